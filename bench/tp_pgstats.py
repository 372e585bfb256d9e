"""What PostgreSQL says about one run's database, for ``bench/throughput.py``.

Read through the admin connection (``admin()``, on the maintenance database), so
that these queries never count in the run's own database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from bench.tp_infra import wait_for
from bench.tp_systems import MONITOR_MARK

Admin = Callable[[], psycopg.Connection]
TX_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "SAVEPOINT", "RELEASE", "END")


def backends_gone(admin: Admin, db: str) -> bool:
    """True when nothing is connected to ``db`` (an exiting backend has reported its counts)."""
    with admin() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)).fetchone()[0] == 0


def xact_commit(admin: Admin, db: str) -> int:
    """``db``'s commits so far, once every connection to it has closed."""
    wait_for(lambda: backends_gone(admin, db), timeout=60, what=f"the connections to {db} to close")
    with admin() as conn:
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (db,)).fetchone()[0]


def next_xid(admin: Admin) -> int:
    """The server's next transaction id: how many transactions wrote (cluster-wide, no delay)."""
    with admin() as conn:
        return int(conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()[0])


def statements(admin: Admin, db: str) -> dict[str, Any]:
    """Top-level statements run in ``db`` since the last reset (the bench's own left out), by role."""
    with admin() as conn:
        rows = conn.execute(
            "SELECT r.rolname, s.query, s.calls FROM pg_stat_statements s "
            "JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
            (db,),
        ).fetchall()
        dealloc = conn.execute("SELECT dealloc FROM pg_stat_statements_info").fetchone()[0]
    rows = [row for row in rows if not row[1].startswith(MONITOR_MARK.strip())]
    out: dict[str, Any] = {"total": 0, "tx_control": 0, "by_role": {}, "dealloc": dealloc}
    busiest = sorted(rows, key=lambda row: -row[2])[:25]
    out["top"] = [[role, calls, " ".join(text.split())[:300]] for role, text, calls in busiest]
    out["fk_checks"] = 0
    for role, text, calls in rows:
        if text.startswith("SELECT 1 FROM ONLY") and "FOR KEY SHARE" in text:
            # Deferred foreign-key checks: run by the server at COMMIT, as the
            # table's owner; not statements a client sent.
            out["fk_checks"] += calls
            continue
        out["total"] += calls
        out["by_role"][role] = out["by_role"].get(role, 0) + calls
        if text.lstrip().upper().startswith(TX_CONTROL):
            out["tx_control"] += calls
    return out
