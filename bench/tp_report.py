"""Medians over rounds, the markdown tables and the ratios of ``bench/throughput.py``."""

from __future__ import annotations

import statistics
from typing import Any

OURS = ("project-db", "project-orm", "project-redis", "project-sqlite")
PEERS = ("project-orm", "q2-orm", "q2-redis", "procrastinate", "celery", "floor")
CPU_GROUPS = ("submitter", "workers", "postgresql", "redis")


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the successful rounds of one system (``rounds``: results or {"error": ...})."""
    ok = [r for r in rounds if "error" not in r]
    errors = [r["error"] for r in rounds if "error" in r]
    if not ok:
        return {"status": errors[0] if errors else "not run", "errors": errors}
    med: dict[str, Any] = {"status": "ok", "rounds_ok": len(ok), "errors": errors}
    for key in ("jobs_per_s", "pickup_p50_ms", "pickup_p95_ms", "submit_p50_ms", "stmts_per_job",
                "commits_per_job", "write_txns_per_job", "fk_checks_per_job", "lost_datagrams"):  # fmt: skip
        med[key] = _median([r.get(key) for r in ok])
    roles = {role for r in ok for role in r.get("stmts_per_job_by_role", {})}
    med["stmts_per_job_by_role"] = {
        role: _median([r.get("stmts_per_job_by_role", {}).get(role, 0.0) for r in ok]) for role in sorted(roles)
    }
    med["cpu_ms_per_job"] = {g: _median([r["cpu_ms_per_job"].get(g) for r in ok]) for g in CPU_GROUPS}
    used = [v for v in med["cpu_ms_per_job"].values() if v is not None]
    med["cpu_ms_per_job"]["total"] = sum(used) if used else None
    return med


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _stmts(med: dict[str, Any]) -> str:
    if med.get("stmts_per_job") is None:
        return "-"
    roles = med.get("stmts_per_job_by_role", {})
    split = ""
    if "bench_submit" in roles or "bench_worker" in roles:
        split = f" ({roles.get('bench_submit', 0):.1f} + {roles.get('bench_worker', 0):.1f})"
    fk = f"; FK checks {med['fk_checks_per_job']:.1f}" if med.get("fk_checks_per_job") else ""
    return f"{med['stmts_per_job']:.1f}{split}{fk}"


def table(summary: dict[str, dict[str, Any]], uses: dict[str, tuple[bool, bool]]) -> str:
    """The main table; ``uses`` maps a system to (uses PostgreSQL, uses Redis)."""
    head = ("| system | jobs/s | pickup p50 ms | pickup p95 ms | submit p50 ms | SQL stmts/job (submit + worker) "
            "| commits/job | write txns/job | CPU ms/job: submitter | workers | PostgreSQL | Redis | total |")  # fmt: skip
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name, med in summary.items():
        if med["status"] != "ok":
            lines.append(f"| {name} | {med['status']} |" + " - |" * 11)
            continue
        cpu = med["cpu_ms_per_job"]
        pg, redis = uses[name]
        note = ""
        if med["errors"]:
            note = f" ({len(med['errors'])} round(s) failed: {med['errors'][0]})"
        if med.get("lost_datagrams"):
            note += f" ({med['lost_datagrams']:.0f} start reports lost)"
        lines.append(
            f"| {name}{note} | {_f(med['jobs_per_s'])} | {_f(med['pickup_p50_ms'])} | {_f(med['pickup_p95_ms'])} "
            f"| {_f(med['submit_p50_ms'], 2)} | {_stmts(med)} | {_f(med['commits_per_job'], 2)} | {_f(med['write_txns_per_job'], 2)} "
            f"| {_f(cpu['submitter'], 2)} | {_f(cpu['workers'], 2)} | {_f(cpu['postgresql'] if pg else None, 2)} "
            f"| {_f(cpu['redis'] if redis else None, 2)} | {_f(cpu['total'], 2)} |"
        )
    return "\n".join(lines)


def ratios(summary: dict[str, dict[str, Any]]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Ours / peer: throughput and total CPU per job, as a table and as data."""
    ours = [n for n in OURS if summary.get(n, {}).get("status") == "ok"]
    peers = [n for n in PEERS if summary.get(n, {}).get("status") == "ok"]
    data: dict[str, dict[str, Any]] = {}
    if not ours or not peers:
        return "(no ratios: a project system and a peer must both have run)", data
    lines = ["| ours / peer | " + " | ".join(peers) + " |", "| --- |" + " --- |" * len(peers)]
    for mine in ours:
        cells = []
        for peer in peers:
            if peer == mine:
                cells.append("-")
                continue
            a, b = summary[mine], summary[peer]
            rate = a["jobs_per_s"] / b["jobs_per_s"]
            cpu_a, cpu_b = a["cpu_ms_per_job"]["total"], b["cpu_ms_per_job"]["total"]
            cpu = cpu_a / cpu_b if cpu_a and cpu_b else None
            data.setdefault(mine, {})[peer] = {"jobs_per_s": rate, "cpu_per_job": cpu}
            cells.append(f"{rate:.2f}x jobs/s, {_f(cpu, 2)}x CPU")
        lines.append(f"| {mine} | " + " | ".join(cells) + " |")
    return "\n".join(lines), data
