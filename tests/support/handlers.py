"""Tiny job kinds for the tests (noop, failing, slow, progress); importing this module registers them.

``tests.call`` runs whatever ``CALLBACK`` is at call time, so a test can put
arbitrary code inside a running job with ``monkeypatch.setattr(handlers,
"CALLBACK", fn)``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Callable

from rest_framework import serializers

from jobs import JobContext, JobError, job

NOOP_TTL = 60
BOOM_MAX_ATTEMPTS = 2
RICH_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


class EchoSerializer(serializers.Serializer):
    n = serializers.IntegerField(min_value=0)
    label = serializers.CharField(required=False, default="x")
    price = serializers.DecimalField(max_digits=6, decimal_places=2, required=False)


@job("tests.noop", ttl=NOOP_TTL, timeout=5)
def noop(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload, "attempt": ctx.attempt}


@job("tests.echo", input=EchoSerializer, timeout=5)
def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return payload


@job("tests.rich", timeout=5)
def rich(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Returns values that only survive the JSON column as strings and lists."""
    return {
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "amount": Decimal("1.50"),
        "id": RICH_UUID,
        "pair": (1, 2),
    }


@job("tests.fail", timeout=5)
def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise JobError("out_of_luck", "No luck today.")


@job("tests.boom", max_attempts=BOOM_MAX_ATTEMPTS, timeout=5)
def boom(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise RuntimeError("kaboom: secret internals")


@job("tests.progress", timeout=5)
def progress(ctx: JobContext, payload: dict[str, Any]) -> list[int]:
    """Publishes each of ``payload["steps"]`` and returns what the row held after each."""
    from jobs.models import Job

    seen = []
    for pct in payload["steps"]:
        ctx.progress(pct, f"step {pct}", cancellable=payload.get("cancellable", True))
        seen.append(Job.objects.values_list("progress_percentage", flat=True).get(pk=ctx.job_id))
    return seen


CALLBACK: Callable[[JobContext, dict[str, Any]], Any] = lambda ctx, payload: None  # noqa: E731


@job("tests.call", timeout=5)
def call(ctx: JobContext, payload: dict[str, Any]) -> Any:
    return CALLBACK(ctx, payload)


# Scheduling (jobs/scheduling.py). The tests and the clusters they start set
# JOBS QUEUE_LIMITS "tests.pair=2" (see tests/support/scheduling.py).
PAIR_QUEUE = "tests.pair"


@job("tests.pair", queue=PAIR_QUEUE, timeout=10)
def pair(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sleeps ``payload["sleep"]`` seconds in a queue of at most two running jobs."""
    import time

    time.sleep(payload.get("sleep", 0))


@job("tests.one_each", per_owner_limit=1, timeout=10)
def one_each(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sleeps ``payload["sleep"]`` seconds; one running per owner at most."""
    import time

    time.sleep(payload.get("sleep", 0))


@job("tests.nap", timeout=10)
def nap(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sleeps ``payload["sleep"]`` seconds in the default queue (no limit)."""
    import time

    time.sleep(payload.get("sleep", 0))
