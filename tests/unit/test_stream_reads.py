"""Event streams' database reads: shared between the streams of a job, counted, pooled.

* ``shared_document``: the streams woken by one change share one read of the
  job document; a stream that knows of a later change gets a read of its own.
* ``JobWatcher.changes``: the logical clock of a job's wakes, kept only while
  someone watches the job.
* The ASGI entry point (and only it) borrows PostgreSQL connections from a
  pool, and ``run_db``'s threads hand a pooled connection back after each call.

No test here touches the database: ``run_db`` and the connection are fakes,
and the settings are imported in a subprocess that never connects.
Async code runs in ``asyncio.run``, one event loop per test; callers are
ordered with events, never with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import RequestFactory

from jobs import waiting
from jobs.api import streams
from jobs.waiting import JobWatcher

USER = SimpleNamespace(pk=7)
JOB_PK = uuid.UUID("00000000-0000-0000-0000-000000000042")


def make_request() -> Any:
    return RequestFactory().get(f"/api/jobs/{JOB_PK}/events/", HTTP_HOST="localhost")


class FakeRunDb:
    """Stands in for ``jobs.waiting.run_db``: counts reads, each held until ``release`` is set.

    Every read answers ``{"read": n}``, n counting from 1 in the order the
    reads began, so a caller's answer tells which read it shared.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self, func: Any, *args: Any, **kwargs: Any) -> dict[str, int]:
        self.calls.append((func, *args))
        number = len(self.calls)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return {"read": number}


@pytest.fixture
def fake_run_db(monkeypatch: pytest.MonkeyPatch):
    """Install a fresh fake for each call; the fake's Event is made inside the test's loop."""

    def install() -> FakeRunDb:
        fake = FakeRunDb()
        monkeypatch.setattr(streams, "run_db", fake)
        return fake

    return install


async def ask(request: Any, seen: int) -> asyncio.Task[Any]:
    """Start a caller of ``shared_document``; return once it waits for (or started) its read.

    ``shared_document`` runs without yielding up to the shielded await, so
    when ``asked`` is seen set the caller has joined or started a read.
    """
    asked = asyncio.Event()

    async def caller() -> Any:
        asked.set()
        return await streams.shared_document(request, USER, JOB_PK, seen=seen)

    task = asyncio.get_running_loop().create_task(caller())
    await asked.wait()
    return task


# --- shared_document ----------------------------------------------------------


def test_callers_with_the_same_count_share_one_read_in_flight(fake_run_db) -> None:
    async def main() -> tuple[FakeRunDb, list[Any]]:
        fake = fake_run_db()
        request = make_request()
        callers = [await ask(request, seen=3) for _ in range(5)]
        in_flight = len(fake.calls)
        fake.release.set()
        results = await asyncio.gather(*callers)
        assert in_flight == 1
        return fake, results

    fake, results = asyncio.run(main())
    assert len(fake.calls) == 1
    assert results == [{"read": 1}] * 5
    func, request, user, job_pk = fake.calls[0]
    assert func is streams._document
    assert (user, job_pk) == (USER, JOB_PK)
    assert request.get_host() == "localhost"


def test_a_caller_who_knows_of_a_later_change_gets_a_new_read(fake_run_db) -> None:
    async def main() -> tuple[FakeRunDb, list[Any]]:
        fake = fake_run_db()
        request = make_request()
        stale = [await ask(request, seen=1), await ask(request, seen=1)]
        later = await ask(request, seen=2)
        # And those who come after it share the newer read, not the older one.
        later_too = await ask(request, seen=2)
        fake.release.set()
        return fake, await asyncio.gather(*stale, later, later_too)

    fake, results = asyncio.run(main())
    assert len(fake.calls) == 2
    assert results == [{"read": 1}, {"read": 1}, {"read": 2}, {"read": 2}]


def test_after_a_read_completes_the_next_caller_reads_again(fake_run_db) -> None:
    async def main() -> tuple[FakeRunDb, Any, Any]:
        fake = fake_run_db()
        request = make_request()
        fake.release.set()
        first = await streams.shared_document(request, USER, JOB_PK, seen=4)
        # The same count as before: a finished read is not handed out again.
        second = await streams.shared_document(request, USER, JOB_PK, seen=4)
        return fake, first, second

    fake, first, second = asyncio.run(main())
    assert len(fake.calls) == 2
    assert (first, second) == ({"read": 1}, {"read": 2})


def test_cancelling_one_waiter_does_not_cancel_the_shared_read(fake_run_db) -> None:
    async def main() -> tuple[FakeRunDb, bool, list[Any]]:
        fake = fake_run_db()
        request = make_request()
        leaving = await ask(request, seen=0)
        staying = [await ask(request, seen=0), await ask(request, seen=0)]
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        fake.release.set()
        return fake, leaving.cancelled(), await asyncio.gather(*staying)

    fake, left, results = asyncio.run(main())
    assert left
    assert fake.cancelled == 0
    assert len(fake.calls) == 1
    assert results == [{"read": 1}, {"read": 1}]


# --- JobWatcher.changes ----------------------------------------------------------


@pytest.fixture
def jobs_watcher(monkeypatch: pytest.MonkeyPatch) -> JobWatcher:
    """A watcher that neither polls nor listens: only ``_wake`` wakes it."""
    monkeypatch.setattr(JobWatcher, "_ensure_running", lambda self: None)
    return JobWatcher()


def test_changes_counts_wakes_while_someone_watches(jobs_watcher: JobWatcher) -> None:
    job, other = uuid.uuid4(), uuid.uuid4()

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with jobs_watcher.watch(job) as first:
            async with jobs_watcher.watch(job) as second:
                seen["before"] = jobs_watcher.changes(job)
                jobs_watcher._wake(job)
                jobs_watcher._wake(job)
                seen["both_woken"] = first.is_set() and second.is_set()
                seen["two_watching"] = jobs_watcher.changes(job)
            # One watcher left: the count is still the job's.
            jobs_watcher._wake(job)
            seen["one_watching"] = jobs_watcher.changes(job)
            seen["other"] = jobs_watcher.changes(other)
        seen["nobody_watching"] = jobs_watcher.changes(job)
        seen["watched"] = jobs_watcher.watched
        async with jobs_watcher.watch(job):
            seen["watched_again"] = jobs_watcher.changes(job)
            jobs_watcher._wake(job)
            seen["woken_again"] = jobs_watcher.changes(job)
        return seen

    seen = asyncio.run(main())
    assert seen == {
        "before": 0,
        "both_woken": True,
        "two_watching": 2,
        "one_watching": 3,
        "other": 0,
        "nobody_watching": 0,
        "watched": 0,
        "watched_again": 0,
        "woken_again": 1,
    }


def test_waking_an_unwatched_job_does_nothing(jobs_watcher: JobWatcher) -> None:
    watched, unwatched = uuid.uuid4(), uuid.uuid4()

    async def main() -> tuple[int, int, bool, int]:
        async with jobs_watcher.watch(watched) as changed:
            jobs_watcher._wake(unwatched)
            jobs_watcher._wake(unwatched)
            return (
                jobs_watcher.changes(unwatched),
                jobs_watcher.changes(watched),
                changed.is_set(),
                jobs_watcher.watched,
            )

    unwatched_count, watched_count, woken, watched_jobs = asyncio.run(main())
    assert (unwatched_count, watched_count, woken, watched_jobs) == (0, 0, False, 1)
    # Nothing was kept for it either: no count, no (empty) set of waiters.
    assert unwatched not in jobs_watcher._changes
    assert unwatched not in jobs_watcher._waiters
    jobs_watcher._wake(unwatched)  # also when nobody watches anything
    assert jobs_watcher.changes(unwatched) == 0


# --- The connection pool of ASGI web processes -----------------------------------

# Settings of a process started as `python -c SCRIPT`, as JSON on stdout.
PRINT_DATABASE = """
import json, sys
{imports}
from django.conf import settings
default = settings.DATABASES["default"]
print(json.dumps({{
    "pool": default.get("OPTIONS", {{}}).get("pool"),
    "conn_max_age": default["CONN_MAX_AGE"],
    "health_checks": default["CONN_HEALTH_CHECKS"],
    "asgi_imported": "project.asgi" in sys.modules,
}}))
"""


def database_settings(imports: str, **extra_env: str) -> dict[str, Any]:
    # Neither importing the settings nor building the ASGI application
    # connects to the database, so no database is needed: the one named in
    # DATABASE_URL does not exist, and a connection attempt would fail.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DB_POOL_MAX_SIZE", "DB_CONN_MAX_AGE", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/whatever",
        DJANGO_SECRET_KEY="x",
        **extra_env,
    )
    result = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE.format(imports=imports)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_asgi_entry_point_turns_on_the_postgresql_pool() -> None:
    found = database_settings("import project.asgi")
    assert found["asgi_imported"] is True
    assert found["pool"] is not None
    assert found["pool"]["max_size"] == 20
    assert found["conn_max_age"] == 0
    # Django refuses health checks together with a pool.
    assert found["health_checks"] is False


def test_the_settings_alone_keep_persistent_connections_without_a_pool() -> None:
    # What qcluster (manage.py) does: DJANGO_SETTINGS_MODULE, no project.asgi.
    found = database_settings("", DJANGO_SETTINGS_MODULE="project.settings")
    assert found["asgi_imported"] is False
    assert found["pool"] is None
    assert found["conn_max_age"] == 60
    assert found["health_checks"] is True


class FakeConnection:
    """The few attributes ``_with_connection`` uses of Django's connection."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.settings_dict = {"OPTIONS": options}
        self.closed = 0
        self.in_atomic_block = False
        self.connection = None

    def close(self) -> None:
        self.closed += 1


def test_run_db_threads_hand_a_pooled_connection_back_after_each_call(monkeypatch) -> None:
    fake = FakeConnection({"pool": {"min_size": 1, "max_size": 20, "timeout": 30}})
    monkeypatch.setattr(waiting, "connection", fake)

    assert waiting._with_connection(lambda a, b: a + b, 2, b=3) == 5
    assert fake.closed == 1
    assert waiting._with_connection(lambda: "again") == "again"
    assert fake.closed == 2

    def broken() -> None:
        raise ValueError("not a database error")

    with pytest.raises(ValueError):
        waiting._with_connection(broken)
    assert fake.closed == 3


def test_run_db_threads_keep_their_connection_without_a_pool(monkeypatch) -> None:
    fake = FakeConnection({})
    monkeypatch.setattr(waiting, "connection", fake)

    assert waiting._with_connection(lambda: "kept") == "kept"
    assert fake.closed == 0
