"""Print the state of the job system: counts, oldest pending, stuck jobs, queue depth."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone

from jobs import queue
from jobs.models import Job
from jobs.selectors import oldest_waiting_since, stuck_condition


class Command(BaseCommand):
    help = "Show job counts by status and kind, the oldest pending job, stuck jobs and queue depth."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        counts: dict[str, dict[str, int]] = {}
        for status, kind, n in Job.objects.order_by().values_list("status", "kind").annotate(n=Count("pk")):
            counts.setdefault(status, {})[kind] = n
        # A retried job waits from its retry (or the end of its backoff), not from its creation.
        oldest = oldest_waiting_since(now)
        stats = {
            "by_status": {status: sum(kinds.values()) for status, kinds in sorted(counts.items())},
            "by_status_and_kind": counts,
            "oldest_pending_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
            "stuck": Job.objects.filter(stuck_condition(now)).count(),
            "queue_depth": queue.queue_depth(),
        }
        if options["json"]:
            self.stdout.write(json.dumps(stats, sort_keys=True))
            return
        self.stdout.write("Jobs by status and kind:")
        for status, kinds in sorted(counts.items()):
            for kind, n in sorted(kinds.items()):
                self.stdout.write(f"  {n:>8}  {status:<10} {kind}")
        if not counts:
            self.stdout.write("  (no jobs)")
        oldest_text = "none" if oldest is None else f"{stats['oldest_pending_seconds']} s"
        self.stdout.write(f"Oldest pending job: {oldest_text} (waiting since it was submitted or retried)")
        self.stdout.write(f"Stuck (processing past their timeout): {stats['stuck']}")
        depth = "unknown (broker not reachable)" if stats["queue_depth"] is None else stats["queue_depth"]
        self.stdout.write(f"Tasks waiting in the django-q2 queue: {depth}")
