"""Prometheus metrics of the job table, read at scrape time.

Every figure comes from the ``Job`` rows when Prometheus asks, so any web
process gives the same answer however many web processes and worker
clusters there are, on however many machines: nothing is counted in a
process's memory. Two aggregate queries per scrape, each bounded by an index:

- active jobs (pending and processing) by kind, through
  ``job_status_created_idx``: the gauges of work waiting and running;
- the jobs that finished in the last ``RECENT`` seconds, through
  ``job_finished_idx``, by kind and outcome, with their wait and run times
  sorted into buckets in the same pass.

No query reads the whole table, so finished jobs are counted over that
window (``jobs_finished_recent``), not since the beginning: a total of the
rows would cost a pass over all of them, and purges (time to live, an
owner's DELETE) would make it drop, which Prometheus reads as a counter
reset (a spike in ``rate()`` the size of the table). For the same reason
the wait and run times are gauge histograms of that window. README,
"Metrics", has the details and the alert rules that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

from jobs import queue
from jobs.models import Job, JobStatus
from jobs.registry import all_kinds
from jobs.rollups import RUN, STARTED, WAIT, active_by_kind

# Rates and durations are of the jobs that finished in this many last seconds.
RECENT = 300
# Upper bounds, in seconds, of the histograms' buckets.
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)



def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _le(bound: float) -> str:
    return str(float(bound))


class JobCollector:
    """A prometheus_client collector of job counts, ages and durations from the database."""

    def describe(self) -> list[Metric]:
        """Nothing: describing would run the queries when the collector is registered."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every job metric, read from the database now."""
        kinds = [kind.name for kind in all_kinds()]
        yield from self._active(kinds)
        yield from self._finished(kinds)
        depth = queue.queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "jobs_broker_queue_depth",
                "Tasks waiting in django-q2's broker (one per job sent to a worker and not yet taken).",
                value=depth,
            )

    def _active(self, kinds: list[str]) -> Iterator[Metric]:
        now = timezone.now()
        by_kind = active_by_kind(now)
        families = {
            "pending": GaugeMetricFamily("jobs_pending", "Jobs waiting to run, due or not.", labels=["kind"]),
            "processing": GaugeMetricFamily("jobs_processing", "Jobs a worker is running.", labels=["kind"]),
            "due": GaugeMetricFamily(
                "jobs_queue_depth", "Pending jobs that are due (not waiting out a retry's backoff).", labels=["kind"]
            ),
            "expired": GaugeMetricFamily(
                "jobs_expired_leases",
                "Processing jobs whose lease ran out: their worker is gone; the reaper will recover them.",
                labels=["kind"],
            ),
        }
        oldest = GaugeMetricFamily(
            "jobs_oldest_pending_age_seconds",
            "Seconds the longest-waiting due job has waited for a worker (0 when none waits).",
            labels=["kind"],
        )
        for kind in sorted({*kinds, *by_kind}):
            row = by_kind.get(kind, {})
            for key, family in families.items():
                family.add_metric([kind], row.get(key, 0))
            since = row.get("waiting_since")
            oldest.add_metric([kind], max(0.0, (now - since).total_seconds()) if since else 0.0)
        yield from families.values()
        yield oldest

    def _finished(self, kinds: list[str]) -> Iterator[Metric]:
        recent = Q(finished_at__gte=timezone.now() - timedelta(seconds=RECENT))
        aggregates = {
            "n": Count("pk"),
            "timed": Count("pk", filter=STARTED),
            "wait_sum": Sum(WAIT, filter=STARTED),
            "run_sum": Sum(RUN, filter=STARTED),
        }
        for i, bound in enumerate(WAIT_BUCKETS):
            aggregates[f"w{i}"] = Count("pk", filter=STARTED & Q(wait__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(RUN_BUCKETS):
            aggregates[f"r{i}"] = Count("pk", filter=STARTED & Q(run__lte=timedelta(seconds=bound)))
        rows = list(
            Job.objects.filter(recent, status__in=JobStatus.terminal())
            .order_by()
            .alias(wait=WAIT, run=RUN)
            .values("kind", "status")
            .annotate(**aggregates)
        )
        finished_recent = GaugeMetricFamily(
            "jobs_finished_recent",
            f"Jobs that finished in the last {RECENT} seconds, by kind and outcome.",
            labels=["kind", "outcome"],
        )
        by_outcome = {(row["kind"], row["status"]): row for row in rows}
        per_kind: dict[str, dict[str, float]] = {}
        for kind in sorted({*kinds, *(row["kind"] for row in rows)}):
            for outcome in JobStatus.terminal():
                row = by_outcome.get((kind, outcome), {})
                finished_recent.add_metric([kind, outcome], row.get("n", 0))
            per_kind[kind] = {}
        for row in rows:
            totals = per_kind[row["kind"]]
            for key, value in row.items():
                if key not in ("kind", "status", "n"):
                    totals[key] = totals.get(key, 0) + (_seconds(value) if key.endswith("_sum") else value)
        yield finished_recent
        yield self._histogram(
            "jobs_wait_seconds",
            f"Seconds from submission to the start of the last attempt, of the jobs that finished "
            f"in the last {RECENT} seconds after starting.",
            "w", WAIT_BUCKETS, "wait_sum", per_kind,
        )  # fmt: skip
        yield self._histogram(
            "jobs_run_seconds",
            f"Seconds from the start of the last attempt to the end, of the jobs that finished "
            f"in the last {RECENT} seconds after starting.",
            "r", RUN_BUCKETS, "run_sum", per_kind,
        )  # fmt: skip

    @staticmethod
    def _histogram(
        name: str, doc: str, prefix: str, bounds: tuple[float, ...], sum_key: str,
        per_kind: dict[str, dict[str, float]],
    ) -> GaugeHistogramMetricFamily:  # fmt: skip
        family = GaugeHistogramMetricFamily(name, doc, labels=["kind"])
        for kind, totals in per_kind.items():
            buckets = [(_le(bound), totals.get(f"{prefix}{i}", 0)) for i, bound in enumerate(bounds)]
            buckets.append(("+Inf", totals.get("timed", 0)))
            family.add_metric([kind], buckets, totals.get(sum_key, 0.0))
        return family
