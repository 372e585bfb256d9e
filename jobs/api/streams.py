"""Hearing of a job's changes without polling: the long poll and the event stream.

Both are async views: while they wait, a request holds an ``asyncio.Event``
(see ``jobs.waiting``), not a thread. Authentication, permissions, throttles
and the 404 for someone else's job are the DRF views' own, run once up front.

* ``GET /api/jobs/{id}/?wait=N`` with ``If-None-Match``: the document as soon
  as it differs from that ETag, or ``304`` after N seconds.
* ``GET /api/jobs/{id}/events/``: Server-Sent Events, ``status`` and
  ``progress``, each with an ``id``; ``Last-Event-ID`` resumes; the stream
  ends after the terminal event.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from weakref import WeakKeyDictionary

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder
from rest_framework.views import APIView

from jobs.api import schema_async
from jobs.api.quick_poll import QuickPoll
from jobs.api.responses import etag_for
from jobs.api.serializers import JobSerializer
from jobs.api.throttling import JobsRateThrottle
from jobs.conf import jobs_settings
from jobs.models import Job
from jobs.selectors import job_etag
from jobs.tombstones import gone_body
from jobs.wait_limits import TooManyWaits, WaitSlot, too_many_waits_response, wait_slot_acquire
from jobs.waiting import release_request_thread, run_db, run_db_soon, watcher

RECHECK = "_jobs_recheck"
# Set by project/wsgi.py before Django loads the URLconf.
WSGI_MARKER = "JOBS_WSGI_PROCESS"


async def wait_set(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set; raise ``TimeoutError`` after ``timeout`` seconds.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation
    (a client gone) that arrives just as the event is set.
    """
    async with asyncio.timeout(timeout):
        await event.wait()


def wait_seconds(request: HttpRequest) -> float | None | JsonResponse:
    """Read ``?wait=N``: seconds (capped), None when absent, a 400 response when malformed."""
    raw = request.GET.get("wait")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        return JsonResponse(
            {"wait": [f"Send a whole number of seconds, at most {jobs_settings.LONG_POLL_MAX}."]},
            status=400,
        )
    return min(float(raw), float(jobs_settings.LONG_POLL_MAX))


def long_pollable(drf_view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a DRF job-detail view so ``GET ...?wait=N`` waits asynchronously for a change.

    Without ``wait`` (and for other methods) the DRF view answers as usual,
    except the plain token poll, which ``QuickPoll`` answers as it would.
    """

    quick = QuickPoll(drf_view.cls)

    def answer(request: HttpRequest, job_id: str) -> HttpResponse:
        # The plain poll (no ?wait=) skips DRF's cycle; see jobs.api.quick_poll.
        return quick(request, job_id) or drf_view(request, job_id=job_id)

    @functools.wraps(drf_view)  # keeps .cls and .initkwargs for the OpenAPI schema
    async def view(request: HttpRequest, job_id: str) -> HttpResponse:
        wait = wait_seconds(request) if request.method == "GET" else None
        if isinstance(wait, JsonResponse):
            return wait
        response = await sync_to_async(answer)(request, job_id)
        if not wait or response.status_code != 304 or response.job.is_terminal:
            # Changed, or finished: a finished job will not change again.
            return response
        try:
            slot = await run_db(wait_slot_acquire, user=request.user, lease=wait)
        except TooManyWaits as exc:
            return too_many_waits_response(exc)
        release_request_thread()
        setattr(request, RECHECK, True)
        deadline = time.monotonic() + wait
        try:
            async with watcher().watch(response.job.pk) as changed:
                while (remaining := deadline - time.monotonic()) > 0:
                    try:
                        await wait_set(changed, remaining)
                    except TimeoutError:
                        break
                    changed.clear()
                    response = await run_db(drf_view, request, job_id=job_id)
                    if response.status_code != 304:
                        return response
            return response
        finally:
            if slot is not None:
                run_db_soon(slot.release)

    def needs_async(request: HttpRequest) -> bool:
        # The query string first: a plain poll has none, and request.GET parses it.
        return request.method == "GET" and bool(request.META.get("QUERY_STRING")) and bool(request.GET.get("wait"))

    # A plain poll is a synchronous call: served synchronously it costs
    # no event-loop round trips (under WSGI, and under ASGI through
    # project.asgi_handler); only a long poll needs the async view.
    @functools.wraps(drf_view)
    def sync_view(request: HttpRequest, job_id: str) -> HttpResponse:
        if needs_async(request):
            return async_to_sync(view)(request, job_id)
        return answer(request, job_id)

    if serves_wsgi():
        return sync_view
    view.sync_variant = sync_view  # type: ignore[attr-defined]
    view.needs_async = needs_async  # type: ignore[attr-defined]
    return view


def serves_wsgi() -> bool:
    """True in a process started from ``project/wsgi.py`` (gunicorn), whose views run synchronously."""
    return os.environ.get(WSGI_MARKER) == "1"


class EventStreamRenderer(BaseRenderer):
    """Lets ``Accept: text/event-stream`` (what EventSource sends) reach the view.

    The stream itself is written by ``events_view``; this only renders the
    JSON error of a request that is refused before the stream starts.
    """

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data, cls=DRFJSONEncoder).encode()


class JobEventsView(APIView):
    """The checks before an event stream: who asks, and is it their job (else 401/404)."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.poll"
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @schema_async.events_schema
    def get(self, request: Request, job_id: str) -> Response:
        from jobs.api.views import get_job_or_404

        job = get_job_or_404(request, job_id)
        response = Response(status=200)
        response.job = job
        response.user = request.user
        response.credentials = Credentials.of(request)
        return response


@dataclass(frozen=True)
class Credentials:
    """What let a stream in, to ask again later whether it still holds."""

    user_pk: Any
    token_key: str | None = None
    session_key: str | None = None

    @classmethod
    def of(cls, request: Request) -> Credentials:
        """The credentials ``request`` was authenticated with (a token, else a session)."""
        token_key = getattr(request.auth, "key", None)
        session = getattr(request._request, "session", None)
        session_key = None if token_key else getattr(session, "session_key", None)
        return cls(user_pk=request.user.pk, token_key=token_key, session_key=session_key)

    def still_hold(self) -> bool:
        """True while the token (or the session) exists and its user is active: one query.

        Read from the database, not the token memory of
        ``project.authentication``: another process may have deleted it.
        """
        if self.token_key is not None:
            return Token.objects.filter(
                key=self.token_key, user_id=self.user_pk, user__is_active=True
            ).exists()
        if not get_user_model()._default_manager.filter(pk=self.user_pk, is_active=True).exists():
            return False
        if self.session_key is None:
            return True
        store = import_module(settings.SESSION_ENGINE).SessionStore(self.session_key)
        return str(store.get(SESSION_KEY)) == str(self.user_pk)


def events_view(drf_view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``JobEventsView`` into the async view that streams the events."""

    @functools.wraps(drf_view)
    async def view(request: HttpRequest, job_id: str) -> HttpResponse:
        checked = await sync_to_async(drf_view)(request, job_id=job_id)
        if request.method != "GET" or checked.status_code != 200:
            return _as_json(checked)
        job, user = checked.job, checked.user
        last_event_id = request.headers.get("Last-Event-ID") or None
        # The job the checks just read: a finished one does not change any more.
        if last_event_id is not None and job.is_terminal:
            if _event_id(_serialize(request, job)) == last_event_id:
                # The client saw the end already: 204 tells EventSource to stop.
                return HttpResponse(status=204)
        if isinstance(request, ASGIRequest):
            try:
                slot = await run_db(
                    wait_slot_acquire, user=user, lease=2 * float(jobs_settings.STREAM_HEARTBEAT)
                )
            except TooManyWaits as exc:
                return too_many_waits_response(exc)
            events: Any = _events(request, user, job.pk, last_event_id, checked.credentials, slot)
        else:
            # Under WSGI a stream would hold a worker thread for its whole
            # life: send the current state and end; EventSource reconnects
            # after `retry`, which makes it a poll every 2 s.
            events = _snapshot_stream(request, user, job.pk, last_event_id)
        response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response

    return view


def _as_json(refused: Response) -> JsonResponse:
    # Refusals are JSON whatever the client accepted (EventSource asks for
    # text/event-stream), with their headers (WWW-Authenticate, Retry-After).
    response = JsonResponse(refused.data, status=refused.status_code, safe=False)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in refused:
            response[header] = refused[header]
    return response


def _document(request: HttpRequest, user: Any, job_pk: Any) -> dict[str, Any] | None:
    job = Job.objects.filter(pk=job_pk, owner=user).first()
    return None if job is None else _serialize(request, job)


class _Document(dict):
    """A job document with its version tag: the stream's event id is the poll's ETag."""

    tag: str


def _serialize(request: HttpRequest, job: Job) -> dict[str, Any]:
    document = _Document(JobSerializer(job, context={"request": request}).data)
    document.tag = job_etag(job).strip('"')
    return document


def _event_id(document: dict[str, Any]) -> str:
    return document.tag if isinstance(document, _Document) else etag_for(document).strip('"')


def format_event(event: str, event_id: str, document: dict[str, Any]) -> str:
    """One Server-Sent Event: its type, id and the job document as one line of JSON."""
    data = json.dumps(document, cls=DRFJSONEncoder, separators=(",", ":"))
    return f"event: {event}\nid: {event_id}\ndata: {data}\n\n"


def deleted_event(user: Any, job_pk: Any) -> str:
    """The last event for a job no longer there: ``deleted``, with the ``410``'s body when its owner may know why."""
    data = json.dumps(gone_body(owner=user, job_id=job_pk) or {}, separators=(",", ":"))
    return f"event: deleted\ndata: {data}\n\n"


def _snapshot_stream(
    request: HttpRequest, user: Any, job_pk: Any, last_event_id: str | None
) -> Iterator[str]:
    yield "retry: 2000\n\n"
    document = _document(request, user, job_pk)
    if document is None:
        yield deleted_event(user, job_pk)
    elif _event_id(document) != last_event_id:
        yield format_event("status", _event_id(document), document)


REVOKED = format_event(
    "revoked",
    "",
    {"detail": "Your credentials are no longer valid: sign in again.", "code": "not_authenticated"},
).replace("id: \n", "")


def _heartbeat_check(credentials: Credentials, slot: WaitSlot | None) -> bool:
    # One trip to the pool per heartbeat: do the credentials still hold, and
    # keep the stream's wait slot from expiring.
    if not credentials.still_hold():
        return False
    if slot is not None:
        slot.renew()
    return True


async def _events(
    request: HttpRequest,
    user: Any,
    job_pk: Any,
    last_event_id: str | None,
    credentials: Credentials,
    slot: WaitSlot | None,
) -> AsyncIterator[str]:
    try:
        release_request_thread()
        yield "retry: 2000\n\n"
        sent_id, sent_status = last_event_id, None
        heartbeat = float(jobs_settings.STREAM_HEARTBEAT)
        ends_at = time.monotonic() + float(jobs_settings.STREAM_MAX_SECONDS)
        # Revoked credentials (a deleted token, a deactivated user) end the
        # stream at the next check: at least once per heartbeat, also while
        # events keep coming.
        check_at = time.monotonic() + heartbeat
        jobs_watcher = watcher()
        async with jobs_watcher.watch(job_pk) as changed:
            while True:
                if time.monotonic() >= check_at:
                    if not await run_db(_heartbeat_check, credentials, slot):
                        yield REVOKED
                        return
                    check_at = time.monotonic() + heartbeat
                changed.clear()
                document = await shared_document(
                    request, user, job_pk, seen=jobs_watcher.changes(job_pk)
                )
                if document is None:
                    # Deleted (purged) while watched: nothing more will come.
                    yield await run_db(deleted_event, user, job_pk)
                    return
                event_id = _event_id(document)
                if event_id != sent_id:
                    # The first event of a connection is always a `status` event.
                    kind = "progress" if document["status"] == sent_status else "status"
                    yield format_event(kind, event_id, document)
                    sent_id, sent_status = event_id, document["status"]
                if document["status"] in ("completed", "failed", "cancelled"):
                    return
                # Wait for a change; a heartbeat costs one check of the credentials.
                while not changed.is_set():
                    now = time.monotonic()
                    remaining = ends_at - now
                    if remaining <= 0:
                        return
                    try:
                        await wait_set(changed, max(0.0, min(check_at - now, remaining)))
                    except TimeoutError:
                        if time.monotonic() >= check_at:
                            if not await run_db(_heartbeat_check, credentials, slot):
                                yield REVOKED
                                return
                            check_at = time.monotonic() + heartbeat
                            yield ": keep-alive\n\n"
    finally:
        # The stream's wait slot goes back however it ended (finished, revoked, dropped).
        if slot is not None:
            run_db_soon(slot.release)


_reads: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], tuple[int, asyncio.Task[Any]]]] = (
    WeakKeyDictionary()
)


async def shared_document(
    request: HttpRequest, user: Any, job_pk: Any, *, seen: int
) -> dict[str, Any] | None:
    """Read the job document once for every stream of the job that asks at the same moment.

    A change wakes all the streams of a job together: they share one read
    (per host, since the document holds absolute URLs) instead of queueing
    one each on the few database threads. ``seen`` is the watcher's count of
    changes to the job the caller knows of: a read started before the latest
    of them is not shared, so nobody gets a state older than what woke them.
    """
    loop = asyncio.get_running_loop()
    reads = _reads.setdefault(loop, {})
    key = (job_pk, getattr(user, "pk", None), request.scheme, request.get_host())
    started_at, pending = reads.get(key, (-1, None))
    # Equal counts: the read began after the change the caller knows of (the
    # count only grows while someone watches; it starts again from 0 after).
    if pending is None or started_at != seen:
        pending = loop.create_task(run_db(_document, request, user, job_pk))
        reads[key] = (seen, pending)

        def forget(task: asyncio.Task[Any], key: tuple[Any, ...] = key) -> None:
            if reads.get(key, (0, None))[1] is task:
                del reads[key]

        pending.add_done_callback(forget)
    # shield: one stream going away must not cancel the read the others wait for.
    return await asyncio.shield(pending)
