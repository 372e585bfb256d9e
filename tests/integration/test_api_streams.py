"""The long poll (``GET /api/jobs/{id}/?wait=N``) and the event stream (``.../events/``), in process.

Both views wait in the event loop and read the database on a small thread
pool (``jobs.waiting.run_db``), so these tests commit their rows
(``transaction=True``) and drive the views through Django's ``AsyncClient``
or the ASGI handler itself, inside one ``async_to_sync`` call per test. Rows
change from the test's own thread (``sync_to_async``) while a view waits.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connection, connections, transaction
from django.test import AsyncClient, AsyncRequestFactory
from django.urls import resolve
from django.utils import timezone
from rest_framework.authtoken.models import Token

from jobs import waiting
from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_delete
from jobs.waiting import watcher
from tests.support.factories import token_client, token_for
from tests.integration.api_helpers import job_url, make_job, set_status

pytestmark = pytest.mark.django_db(transaction=True)

POOL_THREADS = 2
SSE = "text/event-stream"


def events_url(job_id: Any) -> str:
    return f"/api/jobs/{job_id}/events/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The users' passwords are never checked here; the default hasher costs a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def db_pool(monkeypatch):
    """A pool of its own for the waiting views' queries, whose connections end with the test.

    The product's pool lives as long as the process, and so would its
    connections: PostgreSQL would then refuse to drop the test database.
    """
    pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="test-jobs-db")
    monkeypatch.setattr(waiting, "_db_pool", pool)
    yield pool
    # One blocking task per thread, so that every thread closes its own connections.
    barrier = threading.Barrier(POOL_THREADS)

    def close_mine() -> None:
        connections.close_all()
        barrier.wait(timeout=5)

    for future in [pool.submit(close_mine) for _ in range(POOL_THREADS)]:
        future.result(timeout=10)
    pool.shutdown(wait=True)


@pytest.fixture
def auth(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {Token.objects.get_or_create(user=user)[0].key}"}


@pytest.fixture
def job(user) -> Job:
    return make_job(user, status=JobStatus.PROCESSING, progress_percentage=30, progress_message="Reading")


async def get(path: str, auth: dict[str, str] | None = None, **headers: str) -> Any:
    """GET through Django's AsyncClient (headers per request: its constructor's are not sent as such)."""
    return await AsyncClient().get(path, headers={**(auth or {}), **headers})


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async scenario to its end in a fresh event loop (and so with a fresh watcher)."""

    async def main() -> Any:
        return await scenario()

    return async_to_sync(main)()


async def change(func: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Change the database from the test's thread; return when it was done."""
    await sync_to_async(func)(*args, **kwargs)
    return time.monotonic()


def set_progress(job: Job, percentage: int, message: str) -> None:
    Job.objects.filter(pk=job.pk).update(
        progress_percentage=percentage, progress_message=message, updated_at=timezone.now()
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class EventStream:
    """Reads an async streaming response block by block (events, ``retry``, comments)."""

    def __init__(self, response: Any) -> None:
        self._chunks = aiter(response.streaming_content)
        self._buffer = ""
        self._pending: asyncio.Task | None = None
        self.ended = False

    async def _next_chunk(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    async def _fill(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a whole block; True if one is there (or the stream ended)."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self._buffer and not self.ended:
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._next_chunk())
            done, _ = await asyncio.wait({self._pending}, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                return False
            chunk, self._pending = self._pending.result(), None
            if chunk is None:
                self.ended = True
            else:
                self._buffer += chunk.decode()
        return True

    async def next(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next block as a dict of its fields (``data`` parsed); None once the stream ended."""
        assert await self._fill(timeout), f"nothing arrived within {timeout} s"
        if "\n\n" not in self._buffer:
            assert self._buffer == "", f"stream ended inside a block: {self._buffer!r}"
            return None
        block, self._buffer = self._buffer.split("\n\n", 1)
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
        return fields

    async def quiet_for(self, seconds: float) -> bool:
        """True if no block arrives within ``seconds`` (the read stays pending for ``next``)."""
        return not await self._fill(seconds)

    async def events(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every remaining event up to the end of the stream (comments skipped)."""
        found = []
        while (block := await self.next(timeout)) is not None:
            if "event" in block:
                found.append(block)
        return found


async def open_stream(auth: dict[str, str], job_id: Any, **headers: str) -> EventStream:
    """Open a job's event stream; check its headers and its opening ``retry``."""
    response = await get(events_url(job_id), auth, Accept=SSE, **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith(SSE)
    assert response["Cache-Control"] == "no-cache"
    stream = EventStream(response)
    assert await stream.next() == {"retry": "2000"}
    return stream


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.status_code
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert "detail" in body
    return body


# --- Long poll -----------------------------------------------------------------


def test_long_poll_answers_304_at_the_deadline_when_nothing_changes(auth, job):
    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        started = time.monotonic()
        response = await get(job_url(job.pk) + "?wait=1", auth, **{"If-None-Match": etag})
        return response, etag, time.monotonic() - started, watcher().watched

    response, etag, elapsed, watched_after = run(scenario)
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert 0.9 <= elapsed < 3
    assert watched_after == 0


def test_long_poll_wait_is_capped_by_long_poll_max(auth, job, settings):
    settings.JOBS = {**settings.JOBS, "LONG_POLL_MAX": 1}

    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        started = time.monotonic()
        poll = get(job_url(job.pk) + "?wait=600", auth, **{"If-None-Match": etag})
        response = await asyncio.wait_for(poll, 5)
        return response, time.monotonic() - started

    response, elapsed = run(scenario)
    assert response.status_code == 304
    assert 0.9 <= elapsed < 3


def test_long_poll_answers_as_soon_as_the_job_changes(auth, job):
    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        started = time.monotonic()
        poll = asyncio.ensure_future(get(job_url(job.pk) + "?wait=10", auth, **{"If-None-Match": etag}))
        await eventually(lambda: watcher().watched == 1)
        assert not poll.done()
        changed_at = await change(set_progress, job, 60, "Summing")
        response = await asyncio.wait_for(poll, 10)
        return response, etag, started, changed_at, time.monotonic()

    response, etag, started, changed_at, answered_at = run(scenario)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["progress"]) == ("processing", {"percentage": 60, "message": "Summing"})
    assert response["ETag"] != etag
    assert changed_at <= answered_at < started + 5


def test_long_poll_without_if_none_match_answers_at_once(auth, job):
    async def scenario():
        started = time.monotonic()
        response = await get(job_url(job.pk) + "?wait=10", auth)
        return response, time.monotonic() - started

    response, elapsed = run(scenario)
    assert response.status_code == 200
    assert response.json()["id"] == str(job.pk)
    assert elapsed < 2


def test_long_poll_of_a_finished_job_answers_304_at_once(auth, user):
    finished = make_job(user, status=JobStatus.COMPLETED, result={"ok": True})

    async def scenario():
        etag = (await get(job_url(finished.pk), auth))["ETag"]
        started = time.monotonic()
        response = await get(job_url(finished.pk) + "?wait=10", auth, **{"If-None-Match": etag})
        return response, time.monotonic() - started

    response, elapsed = run(scenario)
    assert response.status_code == 304
    assert elapsed < 2


@pytest.mark.parametrize("wait", ["-1", "abc", "1.5", "10s", "%C2%B2"])
def test_malformed_wait_is_a_json_400(auth, job, wait):
    response = run(lambda: get(f"{job_url(job.pk)}?wait={wait}", auth))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "wait" in response.json()


def test_long_poll_of_another_users_job_is_404_at_once(auth, other_user):
    foreign = make_job(other_user, status=JobStatus.PROCESSING)

    async def scenario():
        started = time.monotonic()
        response = await get(job_url(foreign.pk) + "?wait=10", auth, **{"If-None-Match": "*"})
        return response, time.monotonic() - started

    response, elapsed = run(scenario)
    assert_json_error(response, 404)
    assert elapsed < 2


def test_long_poll_needs_authentication(job):
    response = run(lambda: get(job_url(job.pk) + "?wait=5"))
    assert_json_error(response, 401)


def test_long_poll_works_under_the_sync_client_too(user, job):
    # Under WSGI Django runs the async view in an event loop of its own.
    api = token_client(user)
    etag = api.get(job_url(job.pk))["ETag"]
    started = time.monotonic()
    response = api.get(job_url(job.pk) + "?wait=1", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert 0.9 <= time.monotonic() - started < 3


# --- Event stream -------------------------------------------------------------


def test_stream_follows_a_job_to_its_end(auth, user):
    pending = make_job(user, status=JobStatus.PENDING)

    async def scenario():
        etag = (await get(job_url(pending.pk), auth))["ETag"]
        stream = await open_stream(auth, pending.pk)
        events = [await stream.next()]
        await change(
            set_status, pending, JobStatus.PROCESSING, progress_percentage=30, progress_message="Reading"
        )
        events.append(await stream.next())
        await change(set_progress, pending, 60, "Summing")
        events.append(await stream.next())
        done = {"progress_percentage": 100, "result": {"n": 1}, "result_status": 200}
        await change(set_status, pending, JobStatus.COMPLETED, **done)
        events.append(await stream.next())
        return etag, events, await stream.next(), watcher().watched

    etag, events, after_last, watched_after = run(scenario)
    assert [event["event"] for event in events] == ["status", "status", "progress", "status"]
    statuses = [event["data"]["status"] for event in events]
    assert statuses == ["pending", "processing", "processing", "completed"]
    assert [event["data"]["progress"]["percentage"] for event in events] == [0, 30, 60, 100]
    assert events[-1]["data"]["result"] == {"n": 1}
    assert events[0]["id"] == etag.strip('"')
    assert len({event["id"] for event in events}) == 4
    assert all(event["data"]["id"] == str(pending.pk) for event in events)
    assert after_last is None, "the stream goes on after the terminal event"
    assert watched_after == 0


def test_stream_of_a_job_run_by_the_worker(auth, user, settings, fake_queue):
    settings.PURCHASES = {**settings.PURCHASES, "REPORT_DELAY": 0.3}
    api = token_client(user)
    report = api.post("/api/reports/sales/", {}, format="json").json()
    # Committed at once (transaction=True): the fake queue records the job.
    accepted = api.post("/api/reports/sales/", {}, format="json", HTTP_PREFER="respond-async")
    job_id = accepted.json()["id"]
    outcomes: list[str] = []

    def work() -> None:
        try:
            outcomes.append(run_job(job_id))
        finally:
            connection.close()

    async def scenario():
        stream = await open_stream(auth, job_id)
        first = await stream.next()
        worker = threading.Thread(target=work)
        worker.start()
        try:
            return [first, *await stream.events()]
        finally:
            await sync_to_async(worker.join, thread_sensitive=False)(10)

    events = run(scenario)
    assert fake_queue.job_ids == [job_id]
    assert outcomes == [JobStatus.COMPLETED]
    assert events[0]["event"] == "status" and events[0]["data"]["status"] == "pending"
    assert events[-1]["event"] == "status" and events[-1]["data"]["status"] == "completed"
    assert events[-1]["data"]["result"] == report
    percentages = [event["data"]["progress"]["percentage"] for event in events]
    assert percentages == sorted(percentages)
    assert any(event["data"]["status"] == "processing" for event in events)


def test_stream_resumes_with_the_current_state_when_it_changed(auth, job):
    async def scenario():
        seen = (await get(job_url(job.pk), auth))["ETag"].strip('"')
        await change(set_progress, job, 60, "Summing")
        stream = await open_stream(auth, job.pk, **{"Last-Event-ID": seen})
        current = await stream.next(timeout=2)
        await change(set_status, job, JobStatus.FAILED, error={"code": "x", "message": "y"})
        return seen, current, await stream.events()

    seen, current, rest = run(scenario)
    assert current["event"] == "status"
    assert current["id"] != seen
    assert current["data"]["progress"]["percentage"] == 60
    assert [event["data"]["status"] for event in rest] == ["failed"]


def test_stream_resumed_at_the_current_state_sends_only_what_follows(auth, job):
    async def scenario():
        seen = (await get(job_url(job.pk), auth))["ETag"].strip('"')
        stream = await open_stream(auth, job.pk, **{"Last-Event-ID": seen})
        quiet = await stream.quiet_for(0.5)
        await change(set_progress, job, 60, "Summing")
        following = await stream.next()
        cancelled = {"code": "cancelled", "message": "Cancelled."}
        await change(set_status, job, JobStatus.CANCELLED, error=cancelled)
        return seen, quiet, following, await stream.events()

    seen, quiet, following, rest = run(scenario)
    assert quiet, "the state the client already has was sent again"
    assert following["id"] != seen
    assert following["data"]["progress"]["percentage"] == 60
    assert [event["data"]["status"] for event in rest] == ["cancelled"]


def test_stream_of_a_finished_job_sends_its_state_or_204_once_seen(auth, user):
    finished = make_job(user, status=JobStatus.COMPLETED, result={"n": 2}, result_status=200)

    async def scenario():
        stream = await open_stream(auth, finished.pk, **{"Last-Event-ID": "0123456789abcdef"})
        events = await stream.events()
        again = await get(events_url(finished.pk), auth, Accept=SSE, **{"Last-Event-ID": events[-1]["id"]})
        return events, again

    events, again = run(scenario)
    assert [(event["event"], event["data"]["status"]) for event in events] == [("status", "completed")]
    assert again.status_code == 204
    # The same under WSGI, where the check comes before any streaming.
    wsgi = token_client(user).get(events_url(finished.pk), HTTP_LAST_EVENT_ID=events[-1]["id"])
    assert wsgi.status_code == 204


def test_stream_sends_keep_alive_comments_and_ends_after_its_maximum(auth, job, settings):
    settings.JOBS = {**settings.JOBS, "STREAM_HEARTBEAT": 0.2, "STREAM_MAX_SECONDS": 1}

    async def scenario():
        started = time.monotonic()
        stream = await open_stream(auth, job.pk)
        blocks = []
        while (block := await stream.next()) is not None:
            blocks.append(block)
        return blocks, time.monotonic() - started

    blocks, elapsed = run(scenario)
    assert blocks[0]["event"] == "status"
    assert {"comment": "keep-alive"} in blocks[1:]
    assert all("event" not in block for block in blocks[1:])
    assert 0.9 <= elapsed < 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
def test_postgresql_wakes_streams_by_notify_not_polling(auth, job, settings):
    # With polling once a minute, only a NOTIFY can deliver changes within seconds.
    settings.JOBS = {**settings.JOBS, "WATCH_INTERVAL": 60}

    async def scenario():
        started = time.monotonic()
        stream = await open_stream(auth, job.pk)
        events = [await stream.next()]
        for percentage in (40, 50):
            # The first change may arrive by the wake-up when LISTEN starts;
            # once it has, the listener is up and the next one is a NOTIFY.
            await change(set_progress, job, percentage, "Working")
            events.append(await stream.next())
        await change(set_status, job, JobStatus.COMPLETED, progress_percentage=100)
        events.extend(await stream.events())
        return events, time.monotonic() - started

    events, elapsed = run(scenario)
    assert [event["data"]["progress"]["percentage"] for event in events] == [30, 40, 50, 100]
    assert elapsed < 10


def test_stream_ends_when_the_job_is_deleted(auth, job):
    async def scenario():
        stream = await open_stream(auth, job.pk)
        first = await stream.next()
        await change(Job.objects.filter(pk=job.pk).delete)
        return first, await stream.next(), await stream.next()

    first, deleted, end = run(scenario)
    assert first["event"] == "status"
    assert deleted == {"event": "deleted", "data": {}}
    assert end is None


@pytest.mark.parametrize("accept", [SSE, "application/json"])
def test_stream_of_another_users_or_unknown_job_is_a_json_404(auth, other_user, accept):
    foreign = make_job(other_user, status=JobStatus.PROCESSING)

    async def scenario():
        return [await get(events_url(job_id), auth, Accept=accept) for job_id in (foreign.pk, "not-a-uuid")]

    for response in run(scenario):
        assert_json_error(response, 404)


def test_stream_needs_authentication(job):
    response = run(lambda: get(events_url(job.pk), Accept=SSE))
    assert_json_error(response, 401)
    assert response.has_header("WWW-Authenticate")


def test_stream_under_wsgi_is_one_snapshot(user, job):
    response = token_client(user).get(events_url(job.pk), HTTP_ACCEPT=SSE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(SSE)
    blocks = b"".join(response.streaming_content).decode().split("\n\n")
    assert blocks[0] == "retry: 2000"
    assert blocks[1].startswith("event: status\nid: ")
    assert json.loads(blocks[1].split("data: ", 1)[1])["progress"]["percentage"] == 30
    assert blocks[2:] == [""]


# --- A client that goes away frees its watch ------------------------------------


@pytest.mark.parametrize("kind", ["events", "long-poll"])
def test_disconnected_client_frees_its_watch(auth, job, kind, settings):
    # Nothing wakes the waiter during the test (no LISTEN, no poll within a
    # minute): a wake-up at the moment of the disconnect is another story,
    # told by the next test.
    settings.JOBS = {**settings.JOBS, "WATCH_LISTEN": False, "WATCH_INTERVAL": 60}
    path = events_url(job.pk) if kind == "events" else job_url(job.pk)

    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        headers = [
            (b"host", b"testserver"),
            (b"authorization", auth["Authorization"].encode()),
        ]
        if kind == "events":
            headers.append((b"accept", SSE.encode()))
        else:
            headers.append((b"if-none-match", etag.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"wait=30" if kind == "long-poll" else b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        inbox: asyncio.Queue = asyncio.Queue()
        sent: list[dict[str, Any]] = []
        await inbox.put({"type": "http.request", "body": b"", "more_body": False})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        handler = asyncio.ensure_future(ASGIHandler()(scope, inbox.get, send))
        await eventually(lambda: watcher().watched == 1)
        await inbox.put({"type": "http.disconnect"})
        disconnected_at = time.monotonic()
        await asyncio.wait_for(handler, 5)
        return sent, time.monotonic() - disconnected_at, watcher().watched

    sent, took, watched_after = run(scenario)
    assert watched_after == 0
    assert took < 2
    if kind == "events":
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
        body = b"".join(message.get("body", b"") for message in sent[1:])
        assert b"retry: 2000" in body
    else:
        assert sent == []


# A wake-up at the very moment the client goes away: on Python 3.11,
# asyncio.wait_for swallowed such a cancellation (fixed in 3.12), and a view
# that waited with it ran on to its deadline. Private ``_wake``: the only way
# to time the race; one turn of the loop lets the waiter wake first.


def test_long_poll_cancelled_as_its_job_changes_stops_at_once(auth, job, settings):
    settings.JOBS = {**settings.JOBS, "WATCH_LISTEN": False, "WATCH_INTERVAL": 60}
    view = resolve(job_url(job.pk)).func

    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        request = AsyncRequestFactory().get(
            job_url(job.pk), {"wait": "3"}, headers={**auth, "If-None-Match": etag}
        )
        poll = asyncio.ensure_future(view(request, job_id=str(job.pk)))
        await eventually(lambda: watcher().watched == 1)
        watcher()._wake(job.pk)
        await asyncio.sleep(0)
        poll.cancel()
        cancelled_at = time.monotonic()
        await asyncio.wait({poll}, timeout=5)
        return poll.cancelled(), time.monotonic() - cancelled_at, watcher().watched

    cancelled, took, watched_after = run(scenario)
    assert cancelled, "the long poll went on after its cancellation"
    assert took < 1
    assert watched_after == 0


def test_stream_cancelled_as_its_job_changes_stops_at_once(auth, job, settings):
    settings.JOBS = {**settings.JOBS, "WATCH_LISTEN": False, "WATCH_INTERVAL": 60}

    async def scenario():
        response = await get(events_url(job.pk), auth, Accept=SSE)
        chunks = aiter(response.streaming_content)
        assert (await anext(chunks)).startswith(b"retry:")
        assert (await anext(chunks)).startswith(b"event: status")
        # One turn of the loop: this read drives the stream into its wait for a change.
        read = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        assert not read.done() and watcher().watched == 1
        watcher()._wake(job.pk)
        await asyncio.sleep(0)
        read.cancel()
        cancelled_at = time.monotonic()
        await asyncio.wait({read}, timeout=5)
        return read.cancelled(), time.monotonic() - cancelled_at, watcher().watched

    cancelled, took, watched_after = run(scenario)
    assert cancelled, "the stream went on after its cancellation"
    assert took < 1
    assert watched_after == 0


# --- A removed job: 410, final (issue 14, item 6) --------------------------------


def complete_and_delete(job: Job) -> None:
    """Finish the job and delete it as its owner would, in one commit: a watcher sees it gone."""
    with transaction.atomic():
        set_status(job, JobStatus.COMPLETED)
        job_delete(job=job)


def test_long_poll_of_a_job_deleted_while_waiting_answers_410(auth, job):
    async def scenario():
        etag = (await get(job_url(job.pk), auth))["ETag"]
        poll = asyncio.ensure_future(get(job_url(job.pk) + "?wait=10", auth, **{"If-None-Match": etag}))
        await eventually(lambda: watcher().watched == 1)
        await change(complete_and_delete, job)
        return await asyncio.wait_for(poll, 10)

    body = assert_json_error(run(scenario), 410)
    assert (body["code"], body["reason"], body["id"]) == ("job_gone", "deleted", str(job.pk))


def test_stream_of_a_job_deleted_while_watched_says_when_and_why(auth, job):
    async def scenario():
        stream = await open_stream(auth, job.pk)
        first = await stream.next()
        await change(complete_and_delete, job)
        return first, await stream.next(), await stream.next()

    first, deleted, end = run(scenario)
    assert first["event"] == "status"
    assert deleted["event"] == "deleted"
    assert deleted["data"]["code"] == "job_gone"
    assert (deleted["data"]["reason"], deleted["data"]["kind"]) == ("deleted", job.kind)
    assert end is None


@pytest.mark.parametrize("accept", [SSE, "application/json"])
def test_a_gone_job_is_410_at_once_for_the_long_poll_and_the_stream(auth, user, other_user, accept):
    gone = make_job(user, status=JobStatus.FAILED)
    job_delete(job=gone)
    other_auth = {"Authorization": f"Bearer {token_for(other_user)}"}

    async def scenario():
        started = time.monotonic()
        poll = await get(job_url(gone.pk) + "?wait=10", auth, **{"If-None-Match": '"x"'})
        events = await get(events_url(gone.pk), auth, Accept=accept)
        foreign = await get(events_url(gone.pk), other_auth, Accept=accept)
        return poll, events, foreign, time.monotonic() - started

    poll, events, foreign, elapsed = run(scenario)
    for response in (poll, events):
        assert assert_json_error(response, 410)["removed_at"]
    assert_json_error(foreign, 404)
    assert elapsed < 3
