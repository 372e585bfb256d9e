"""Which pending jobs a cluster takes next, in one statement: due, not held back, by priority.

Used by the job-table brokers (``jobs.broker`` on PostgreSQL,
``jobs.sqlite_broker`` on SQLite). A delivery stamps ``enqueued_at`` on
pending, due jobs that no cluster holds, highest ``priority`` first and then
oldest first, and says when the next delayed job falls due, so the pusher
sleeps no longer than that.

Jobs of a limited queue or kind (``jobs.scheduling``) are delivered only
while their queue and owner have a free place, counting running jobs and
jobs delivered but not yet claimed, and at most one per queue in each
statement (the head of the queue): the claim checks the limits again under a
lock, so an over-delivery costs a wasted hand-over, never an extra job
running. Without limits the statement has no such clause.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.db import db_time, prepared_cursor
from jobs.scheduling import UNLIMITED, limited_kinds, owner_limits, queue_limits

# Pending jobs a worker may take now and nobody holds: %(now)s, %(lost)s.
WAITING = (
    "{t}.status = 'pending' AND NOT {t}.cancel_requested"
    " AND ({t}.available_at IS NULL OR {t}.available_at <= %(now)s)"
    " AND ({t}.enqueued_at IS NULL OR {t}.enqueued_at < %(lost)s)"
)
DIALECTS = {
    "postgresql": {
        "each": "(SELECT key, value FROM jsonb_each_text(%({p})s::jsonb))",
        "number": "value::int",
        # An array, not a JSON set: the planner then reads job_active_kind_idx.
        "limited_kind": "{col} = ANY(%(limited_names)s)",
        "lock": "FOR UPDATE OF j SKIP LOCKED",
    },
    "sqlite": {
        "each": "(SELECT key, value FROM json_each(%({p})s))",
        "number": "value",
        "limited_kind": "{col} IN (SELECT key FROM json_each(%(limited)s))",
        "lock": "",
    },
}


def _limited_clause(d: dict[str, str]) -> tuple[str, str]:
    """(the CTEs of the limited jobs that may start, the condition on ``j`` that uses them).

    ``limited``: {kind: queue} of every kind in a limited queue or with an
    owner limit; ``queue_limits`` {queue: n}; ``owner_limits`` {kind: n}.
    Each part reads few rows: running jobs (the status index), and pending
    jobs of the limited kinds (``job_active_kind_idx``), never the backlog
    of other kinds.
    """
    limited = d["limited_kind"]
    queue_limit = f"(SELECT {d['number']} FROM {d['each'].format(p='queue_limits')} q WHERE q.key = c.queue)"
    owner_limit = f"(SELECT {d['number']} FROM {d['each'].format(p='owner_limits')} o WHERE o.key = c.kind)"
    ctes = f"""held AS MATERIALIZED (
    SELECT r.queue, r.kind, r.owner_id FROM jobs_job r
    WHERE r.status = 'processing' AND {limited.format(col='r.kind')}
    UNION ALL
    SELECT r.queue, r.kind, r.owner_id FROM jobs_job r
    WHERE r.status = 'pending' AND r.enqueued_at >= %(lost)s AND {limited.format(col='r.kind')}
), startable AS (
    SELECT c.id, row_number() OVER (PARTITION BY c.queue ORDER BY c.priority DESC, c.created_at) AS place
    FROM jobs_job c
    WHERE {limited.format(col='c.kind')} AND {WAITING.format(t="c")}
      AND (SELECT count(*) FROM held h WHERE h.queue = c.queue) < COALESCE({queue_limit}, {UNLIMITED})
      AND (c.owner_id IS NULL OR (SELECT count(*) FROM held h WHERE h.kind = c.kind AND h.owner_id = c.owner_id)
           < COALESCE({owner_limit}, {UNLIMITED}))
)"""
    condition = (
        f"AND (NOT {limited.format(col='j.kind')}"
        " OR j.id IN (SELECT id FROM startable WHERE place = 1))"
    )
    return ctes, condition


NEXT_DUE_SQL = "SELECT min(available_at) FROM jobs_job WHERE status = 'pending' AND available_at > %(now)s"

_statements: dict[tuple[str, str], str] = {}


# How a statement treats the limited kinds: "none" configured; "skip" them
# (cheap to plan and to run: the limits' clause costs more to plan than to
# run until a connection has prepared it, DB_PREPARE_THRESHOLD runs, and a
# generic plan of it may not suit every queue) but say whether any wait; "take"
# them within their limits.
MODES = ("none", "skip", "take")


def statement(vendor: str, *, mode: str) -> str:
    """The delivery statement for ``vendor`` in ``mode`` (see ``MODES``)."""
    key = (vendor, mode)
    if key not in _statements:
        d = DIALECTS[vendor]
        startable, condition = _limited_clause(d) if mode == "take" else ("", "")
        if mode == "skip":
            condition = f"AND NOT {d['limited_kind'].format(col='j.kind')}"
        pick = f"""SELECT j.id FROM jobs_job j
    WHERE {WAITING.format(t="j")} {condition}
    ORDER BY j.priority DESC, j.created_at
    LIMIT %(limit)s {d["lock"]}"""
        columns = "id, kind, priority, created_at, queue"
        returning = "RETURNING " + ", ".join(f"jobs_job.{c}" for c in columns.split(", "))
        if vendor == "postgresql":
            # The same round trip says when the next delayed job falls due,
            # and whether jobs of the limited kinds wait.
            waiting = (
                f"EXISTS (SELECT 1 FROM jobs_job w WHERE {d['limited_kind'].format(col='w.kind')}"
                f" AND {WAITING.format(t='w')})"
                if mode != "none"
                else "false"
            )
            ctes = ", ".join(filter(None, [startable, f"next AS MATERIALIZED ({pick})"]))
            _statements[key] = (
                f"WITH {ctes}, delivered AS (UPDATE jobs_job SET enqueued_at = %(now)s FROM next "
                f"WHERE jobs_job.id = next.id {returning}) "
                f"SELECT {columns}, NULL::timestamptz, NULL::boolean FROM delivered UNION ALL "
                f"SELECT NULL, NULL, NULL, NULL, NULL, ({NEXT_DUE_SQL}), {waiting}"
            )
        else:
            prefix = f"WITH {startable} " if startable else ""
            _statements[key] = (
                f"{prefix}UPDATE jobs_job SET enqueued_at = %(now)s WHERE id IN ({pick}) {returning}"
            )
    return _statements[key]


@dataclass(frozen=True)
class Delivery:
    """What a delivery took: (id, kind) in the order to run them, and what to do next."""

    jobs: list[tuple[uuid.UUID, str]]
    # A limited job was taken: look again at once, the next one may fit too.
    limited: bool
    # When the next delayed or backing-off job falls due (PostgreSQL only; see next_due).
    next_due: datetime | None
    # Jobs of the limited kinds wait (PostgreSQL; always True elsewhere):
    # the next delivery should take them within their limits.
    limited_waiting: bool = True


def deliver(*, now: datetime, lost: datetime, limit: int, limited_waiting: bool = True) -> Delivery:
    """Stamp and return up to ``limit`` jobs to run next (see the module).

    ``limited_waiting=False`` (what the last delivery said, on PostgreSQL)
    skips the limited kinds, with a cheaper statement.
    """
    vendor = connection.vendor
    queues, owners = queue_limits(), owner_limits()
    kinds = limited_kinds()
    params: dict[str, Any] = {"now": db_time(now), "lost": db_time(lost), "limit": limit}
    mode = "none"
    if kinds:
        mode = "take" if limited_waiting or vendor != "postgresql" else "skip"
        params.update(limited=json.dumps(kinds), limited_names=list(kinds))
        params.update(queue_limits=json.dumps(queues), owner_limits=json.dumps(owners))
    with prepared_cursor() as cursor:
        cursor.execute(statement(vendor, mode=mode), params)
        rows = cursor.fetchall()
    last = [row for row in rows if row[0] is None] if vendor == "postgresql" else []
    rows = [row for row in rows if row[0] is not None]
    # An UPDATE returns its rows in no particular order: the cluster runs them in this one.
    rows.sort(key=lambda row: (-row[2], str(row[3]) if vendor != "postgresql" else row[3]))
    return Delivery(
        jobs=[(pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk)), kind) for pk, kind, *_ in rows],
        limited=any(row[1] in kinds for row in rows),
        next_due=last[0][5] if last else None,
        limited_waiting=bool(last[0][6]) if last else True,
    )


def next_due(now: datetime) -> datetime | None:
    """When the next delayed (or backing-off) pending job falls due, if any."""
    with prepared_cursor() as cursor:
        cursor.execute(NEXT_DUE_SQL, {"now": db_time(now)})
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
    return value
