"""floor: the least a PostgreSQL job queue can do, as a baseline for ``bench/throughput.py``.

A table is the queue. Submitting is one statement (an ``INSERT`` whose CTE calls
``pg_notify``, delivered at commit). Each worker process LISTENs, claims the oldest
queued row with ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING``, runs the handler, marks the row done, and sleeps on its connection
until a notification (or 1 s) when nothing is left. No retries, leases or results.

    python -m bench.floor schema   # FLOOR_DSN=postgresql://...
    python -m bench.floor worker --processes 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys

import psycopg

from bench.tp_probe import report_started

CHANNEL = "floor_job"
SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_job (
    id bigserial PRIMARY KEY,
    label text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS floor_job_queued ON floor_job (id) WHERE status = 'queued';
"""
SUBMIT = (
    "WITH wake AS (SELECT pg_notify('floor_job', '')) "
    "INSERT INTO floor_job (label) SELECT %s FROM wake"
)
CLAIM = """
UPDATE floor_job SET status = 'running', started_at = now()
WHERE id = (SELECT id FROM floor_job WHERE status = 'queued'
            ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING id, label
"""
DONE = "UPDATE floor_job SET status = 'done', finished_at = now() WHERE id = %s"


class Submitter:
    """One autocommit connection; ``submit(label)`` is one statement, one commit."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def submit(self, label: str) -> None:
        self.conn.execute(SUBMIT, (label,))


def work(dsn: str) -> None:
    """Claim and run jobs for ever (until the process is terminated)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        while True:
            row = conn.execute(CLAIM).fetchone()
            if row is None:
                # Wait for one notification; the loop also drains any backlog.
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass
                continue
            report_started(row[1])
            conn.execute(DONE, (row[0],))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["schema", "worker"])
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    dsn = os.environ["FLOOR_DSN"]
    if args.command == "schema":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        return
    children = [multiprocessing.Process(target=work, args=(dsn,)) for _ in range(args.processes)]
    for child in children:
        child.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for child in children:
            child.join()
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
