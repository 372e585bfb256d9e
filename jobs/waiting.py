"""Waiting for jobs to change, for long polls and event streams.

One ``JobWatcher`` per event loop (one per ASGI worker process) tells every
waiting request when its job changes:

* on PostgreSQL, one connection per process LISTENs to ``jobs_job_changed``,
  which a trigger on the jobs table NOTIFYs on every update (migration 0004);
* elsewhere (SQLite), one query per ``JOBS["WATCH_INTERVAL"]`` reads the
  state of every watched job at once and wakes the waiters of those that
  changed; the same polling covers PostgreSQL while its listener reconnects.

A waiting request holds an ``asyncio.Event``, not a thread: database work
runs on a small shared pool (``run_db``), so a thousand open streams cost a
thousand events and one connection, not a thousand threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

from jobs.conf import jobs_settings
from jobs.models import Job

logger = logging.getLogger(__name__)

CHANNEL = "jobs_job_changed"
T = TypeVar("T")

# Columns whose change a waiter must hear of (the job document is built from them).
VERSION_FIELDS = (
    "status",
    "progress_percentage",
    "progress_message",
    "updated_at",
    "attempts",
    "cancel_requested",
    "finished_at",
)


def wait_until_finished(job: Job, *, timeout: float) -> Job:
    """Block until ``job`` is finished or ``timeout`` seconds passed; return it fresh.

    For a synchronous request thread (``Prefer: respond-async, wait=N``). The
    thread's database connection goes back (to the pool) first: a sleeping
    request must not hold one. Under ASGI the wait is the watcher's (one
    LISTEN, or one poll for every waiter, reads on ``run_db``); elsewhere the
    row is re-read, first often, then at most twice a second, on a
    connection taken for each read only.
    """
    release_connection()
    loop = _request_event_loop()
    if loop is not None:
        found = asyncio.run_coroutine_threadsafe(_await_finished(job.pk, timeout), loop).result()
    else:
        found = _poll_finished(job.pk, timeout)
    # Deleted meanwhile (purged): the caller still answers with what it had.
    return job if found is None else found


def release_connection() -> None:
    """Close this thread's database connection (with a pool: hand it back), unless a transaction needs it."""
    if not connection.in_atomic_block:
        connection.close()


def _fresh(job_pk: Any) -> Job | None:
    return Job.objects.filter(pk=job_pk).first()


def _poll_finished(job_pk: Any, timeout: float) -> Job | None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        job = _fresh(job_pk)
        release_connection()
        remaining = deadline - time.monotonic()
        if job is None or job.is_terminal or remaining <= 0:
            return job
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.5)


async def _await_finished(job_pk: Any, timeout: float) -> Job | None:
    deadline = time.monotonic() + timeout
    async with watcher().watch(job_pk) as changed:
        while True:
            changed.clear()
            job = await run_db(_fresh, job_pk)
            remaining = deadline - time.monotonic()
            if job is None or job.is_terminal or remaining <= 0:
                return job
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                pass  # one last read, then answer


_serving_loop: asyncio.AbstractEventLoop | None = None


def serve_waits_from(loop: asyncio.AbstractEventLoop) -> None:
    """Let request threads wait on ``loop``'s job watcher (the ASGI handler's event loop)."""
    global _serving_loop
    _serving_loop = loop


def _request_event_loop() -> asyncio.AbstractEventLoop | None:
    # The event loop serving this request, seen from the request's thread:
    # the one the ASGI handler registered, or asgiref's when the thread is
    # one of its sync_to_async threads. None under WSGI, in tests and in
    # workers (and in the loop's own thread, which must not block on it).
    loop = _serving_loop
    if loop is None:
        try:
            from asgiref.sync import SyncToAsync

            loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
            if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
                loop = None
        except AttributeError:  # asgiref internals moved: poll
            return None
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    try:
        if asyncio.get_running_loop() is loop:
            return None
    except RuntimeError:  # no loop in this thread: the usual case
        pass
    return loop


# --- Database work from async code ------------------------------------------

_db_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _db_pool
    if _db_pool is None:
        _db_pool = ThreadPoolExecutor(
            max_workers=jobs_settings.WATCH_DB_THREADS, thread_name_prefix="jobs-db"
        )
    return _db_pool


async def run_db(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking (ORM) ``func`` on the shared pool of a few threads; await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), partial(_with_connection, func, *args, **kwargs))


def run_db_soon(func: Callable[..., Any], *args: Any) -> None:
    """Run blocking ``func`` on the shared pool without awaiting it.

    For clean-up in a ``finally`` of a request that may be cancelled (a
    client gone): an ``await`` there could be cancelled too.
    """
    _pool().submit(partial(_with_connection, func, *args))


def _with_connection(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # These threads live for the whole process and keep their connection
    # (or, with a connection pool, hand it back after each call); drop one
    # the database closed (restart, failover) and retry once.
    pooled = bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))
    try:
        return func(*args, **kwargs)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        close_old_connections()
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        return func(*args, **kwargs)
    finally:
        if pooled:
            connection.close()


def release_request_thread() -> None:
    """Let the request's own worker thread go while it waits or streams.

    Django runs each ASGI request's synchronous middleware on a thread of its
    own, kept (idle) until the response has been sent: for a long poll or an
    event stream that is the whole wait. Everything after this call uses
    ``run_db``; anything thread-sensitive still to come gets a fresh thread.
    """
    try:
        from asgiref.sync import SyncToAsync

        context = SyncToAsync.thread_sensitive_context.get(None)
        if context is None:
            return
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    except (AttributeError, TypeError):  # asgiref internals moved: keep the thread
        return
    if executor is not None:
        from django.db import connections

        # Its database connections end with it, not whenever it is collected.
        executor.submit(connections.close_all)
        executor.shutdown(wait=False)


# --- The watcher ------------------------------------------------------------


class JobWatcher:
    """Wakes the waiters of a job when that job changes (one watcher per event loop)."""

    def __init__(self) -> None:
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._versions: dict[uuid.UUID, tuple[Any, ...] | None] = {}
        self._changes: dict[uuid.UUID, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None
        self._listening = False

    @asynccontextmanager
    async def watch(self, job_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """Yield an event that is set whenever job ``job_id`` may have changed.

        Clear it before reading the job, then wait on it: a change after the
        read sets it again. It may also be set without a change (a reconnect,
        the first check): re-read and compare.
        """
        changed = asyncio.Event()
        self._waiters[job_id].add(changed)
        self._ensure_running()
        try:
            yield changed
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(changed)
                if not waiters:
                    del self._waiters[job_id]
                    self._versions.pop(job_id, None)
                    self._changes.pop(job_id, None)
            if not self._waiters and self._task is not None:
                # Nobody waits: stop listening/polling (and free the connection).
                self._task.cancel()
                self._task = None

    @property
    def watched(self) -> int:
        """How many jobs have waiters (for tests and stats)."""
        return len(self._waiters)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def changes(self, job_id: uuid.UUID) -> int:
        """How many times the waiters of ``job_id`` were woken so far (a logical clock)."""
        return self._changes.get(job_id, 0)

    def _wake(self, job_id: uuid.UUID) -> None:
        waiters = self._waiters.get(job_id)
        if not waiters:
            return
        self._changes[job_id] += 1
        for event in waiters:
            event.set()

    def _wake_all(self) -> None:
        for job_id in list(self._waiters):
            self._wake(job_id)

    async def _run(self) -> None:
        if connection.vendor == "postgresql" and jobs_settings.WATCH_LISTEN:
            poller = asyncio.get_running_loop().create_task(self._poll_while_deaf())
            try:
                await self._listen_forever()
            finally:
                poller.cancel()
        else:
            await self._poll(lambda: True)

    # PostgreSQL: LISTEN, reconnecting with backoff; polled meanwhile.

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost connection, a restart: keep going
                self._listening = False
                logger.warning("Job change listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _listen(self) -> None:
        import psycopg

        params = await run_db(_listen_params)
        aconn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        try:
            await aconn.execute(f"LISTEN {CHANNEL}")
            self._listening = True
            # Anything may have changed while nobody listened.
            self._wake_all()
            async for notification in aconn.notifies():
                try:
                    self._wake(uuid.UUID(notification.payload))
                except ValueError:
                    continue
        finally:
            self._listening = False
            await aconn.close()

    async def _poll_while_deaf(self) -> None:
        await self._poll(lambda: not self._listening)

    # Elsewhere: read every watched job's version in one query, per interval.

    async def _poll(self, active: Callable[[], bool]) -> None:
        interval = float(jobs_settings.WATCH_INTERVAL)
        while True:
            await asyncio.sleep(interval)
            if not active() or not self._waiters:
                continue
            ids = list(self._waiters)
            try:
                versions = await run_db(_read_versions, ids)
            except DatabaseError as exc:
                logger.warning("Could not check watched jobs (%s); retrying", exc)
                continue
            for job_id in ids:
                version = versions.get(job_id)
                if job_id not in self._versions or self._versions[job_id] != version:
                    self._versions[job_id] = version
                    self._wake(job_id)


def _read_versions(ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[Any, ...]]:
    versions: dict[uuid.UUID, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 500):
        rows = Job.objects.filter(pk__in=ids[start : start + 500]).values_list("pk", *VERSION_FIELDS)
        versions.update((row[0], row[1:]) for row in rows)
    return versions


def _listen_params() -> dict[str, Any]:
    # The same server and credentials as Django's connection, without the
    # options psycopg's plain connect() would not take.
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold", "server_side_binding", "pool"):
        params.pop(key, None)
    return params


_watchers: WeakKeyDictionary[asyncio.AbstractEventLoop, JobWatcher] = WeakKeyDictionary()


def watcher() -> JobWatcher:
    """Return the running event loop's watcher."""
    loop = asyncio.get_running_loop()
    found = _watchers.get(loop)
    if found is None:
        found = _watchers[loop] = JobWatcher()
    return found
