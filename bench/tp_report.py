"""Medians over rounds, the markdown tables and the ratios of ``bench/throughput.py``."""

from __future__ import annotations

import statistics
from typing import Any

OURS = ("project-db", "project-orm", "project-redis", "project-sqlite")
PEERS = ("project-orm", "q2-orm", "q2-redis", "procrastinate", "celery", "floor")
CPU_GROUPS = ("submitter", "workers", "postgresql", "redis")
MEDIANS = ("jobs_per_s", "burst_pickup_p50_ms", "burst_pickup_p95_ms", "paced_pickup_p50_ms", "paced_pickup_p95_ms",
           "paced_pickup_p99_ms", "paced_submit_p50_ms", "paced_submits_per_s", "submit_p50_ms", "stmts_per_job",
           "commits_per_job", "write_txns_per_job", "fk_checks_per_job", "lost_datagrams",
           "paced_lost_datagrams")  # fmt: skip
RATIOS_CAPTION = (
    "Ratios, ours / peer, one cell per pair: burst jobs/s (above 1: ours is faster), burst CPU ms/job,\n"
    "all processes (below 1: ours is cheaper), paced pickup p50 (below 1: ours hears of a job sooner)."
)


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
    for key in MEDIANS:
        med[key] = _median([r.get(key) for r in ok])
    med["idle_cpu_pct"] = {
        side: _median([r.get("idle_cpu_pct", {}).get(side) for r in ok]) for side in ("cluster", "postgresql")
    }
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


def _pair(a: float | None, b: float | None, digits: int = 1) -> str:
    return "-" if a is None and b is None else f"{_f(a, digits)} / {_f(b, digits)}"


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
    head = ("| system | jobs/s | burst pickup p50/p95 ms | pickup p50/p95 ms (paced) | idle CPU % (cluster / PG) "
            "| submit p50 ms | SQL stmts/job (submit + worker) | commits/job | write txns/job "
            "| CPU ms/job: submitter | workers | PostgreSQL | Redis | total |")  # fmt: skip
    cells = head.count("|") - 1
    lines = [head, "|" + " --- |" * cells]
    for name, med in summary.items():
        if med["status"] != "ok":
            lines.append(f"| {name} | {med['status']} |" + " - |" * (cells - 2))
            continue
        cpu = med["cpu_ms_per_job"]
        pg, redis = uses[name]
        note = ""
        if med["errors"]:
            note = f" ({len(med['errors'])} round(s) failed: {med['errors'][0]})"
        lost = (med.get("lost_datagrams") or 0) + (med.get("paced_lost_datagrams") or 0)
        if lost:
            note += f" ({lost:.0f} start reports lost)"
        idle = med["idle_cpu_pct"]
        lines.append(
            f"| {name}{note} | {_f(med['jobs_per_s'])} | {_pair(med['burst_pickup_p50_ms'], med['burst_pickup_p95_ms'])} "
            f"| {_pair(med['paced_pickup_p50_ms'], med['paced_pickup_p95_ms'])} "
            f"| {_pair(idle['cluster'], idle['postgresql'])} "
            f"| {_f(med['submit_p50_ms'], 2)} | {_stmts(med)} | {_f(med['commits_per_job'], 2)} | {_f(med['write_txns_per_job'], 2)} "
            f"| {_f(cpu['submitter'], 2)} | {_f(cpu['workers'], 2)} | {_f(cpu['postgresql'] if pg else None, 2)} "
            f"| {_f(cpu['redis'] if redis else None, 2)} | {_f(cpu['total'], 2)} |"
        )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def ratios(summary: dict[str, dict[str, Any]]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Ours / peer: burst throughput, burst CPU per job and paced pickup p50, as a table and as data."""
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
            rate = _ratio(a["jobs_per_s"], b["jobs_per_s"])
            cpu = _ratio(a["cpu_ms_per_job"]["total"], b["cpu_ms_per_job"]["total"])
            pickup = _ratio(a.get("paced_pickup_p50_ms"), b.get("paced_pickup_p50_ms"))
            data.setdefault(mine, {})[peer] = {"jobs_per_s": rate, "cpu_per_job": cpu, "paced_pickup_p50": pickup}
            cells.append(f"jobs/s {_f(rate, 2)}x, CPU {_f(cpu, 2)}x, pickup {_f(pickup, 2)}x")
        lines.append(f"| {mine} | " + " | ".join(cells) + " |")
    return "\n".join(lines), data
