"""PostgreSQL restarted under running jobs: workers reconnect and every job ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from jobs import submit
from jobs.models import Job, JobStatus
from jobs.recovery import reap_task
from tests.faults.support import executions, settle, status_counts
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    # Every other test's connections die with the server: run alone, after the others.
    pytest.mark.restarts_database,
    pytest.mark.django_db(transaction=True),
]

PG_VERSION, PG_CLUSTER = "15", "main"
PG_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, PG_CLUSTER]


def pg_online() -> bool:
    done = subprocess.run(
        ["pg_lsclusters", "--no-header", PG_VERSION, PG_CLUSTER], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and "online" in done.stdout


def pg_accepts_connections() -> bool:
    try:
        connection.close()
        connection.ensure_connection()
    except (OperationalError, InterfaceError):
        return False
    return True


@pytest.fixture
def restart_postgres(transactional_db):
    """A function that restarts the local PostgreSQL; it is running again after the test, whatever happens."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite has no server to restart")
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        pytest.skip("restarting PostgreSQL needs root and Debian's pg_ctlcluster")
    port = str(connection.settings_dict.get("PORT") or 5432)
    host = connection.settings_dict.get("HOST") or "127.0.0.1"
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)
    rows = [line.split()[:3] for line in listing.stdout.splitlines()]
    if host not in ("127.0.0.1", "localhost") or [PG_VERSION, PG_CLUSTER, port] not in rows:
        pytest.skip(f"the test database is not the local PostgreSQL cluster {PG_VERSION}/{PG_CLUSTER}")

    def restart() -> None:
        done = subprocess.run([*PG_CTL, "restart"], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.skip(f"could not restart PostgreSQL: {done.stderr.strip() or done.stdout.strip()}")

    try:
        yield restart
    finally:
        if not pg_online():
            subprocess.run([*PG_CTL, "start"], capture_output=True, timeout=120, check=False)
        wait_for(pg_accepts_connections, timeout=60, interval=0.5, what="PostgreSQL to accept connections")


def test_postgres_restart_while_jobs_run_every_job_ends(clusters, restart_postgres, user):
    cluster = clusters.start(Q_WORKERS="2")
    # The restart may cut a job off after its side effect: its re-run then
    # finds the side effect recorded, which these jobs accept.
    ids = [
        submit("faults.sleep", {"seconds": 1, "allow_rerun": True, "n": n}, owner=user).pk
        for n in range(16)
    ]
    wait_for(
        lambda: status_counts(ids).get(JobStatus.COMPLETED, 0) >= 2
        and status_counts(ids).get(JobStatus.PROCESSING, 0) >= 1,
        timeout=30,
        what="some jobs done and some running",
    )

    restarted_at = timezone.now()
    restart_postgres()
    wait_for(pg_accepts_connections, timeout=60, interval=0.5, what="PostgreSQL back")
    interrupted = Job.objects.filter(pk__in=ids, status=JobStatus.PROCESSING).count()

    def reap() -> None:
        try:
            reap_task()
        except (OperationalError, InterfaceError):
            connection.close()

    started = time.monotonic()
    counts = settle(ids, timeout=90, reap=reap, logs=clusters.logs)
    print(f"all 16 jobs ended {time.monotonic() - started:.1f}s after the restart "
          f"({interrupted} were processing then): {counts}")  # fmt: skip

    assert counts == {JobStatus.COMPLETED: 16}, clusters.logs()
    assert sorted(executions()) == sorted(str(pk) for pk in ids)
    # The same cluster went on working after the restart: its processes reconnected.
    assert cluster.poll() is None, clusters.logs()
    after = Job.objects.filter(pk__in=ids, started_at__gt=restarted_at)
    assert after.exists() and all(
        clusters.group_of(int(worker.rsplit(":", 1)[1])) is cluster
        for worker in after.values_list("worker", flat=True)
    ), clusters.logs()
