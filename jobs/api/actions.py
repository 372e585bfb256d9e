"""Any DRF view action as a job, on request: ``@runs_as_job(kind=...)``.

Without a header the action runs in the request, as it always did. With
``Prefer: respond-async`` (RFC 7240) or ``X-Job-Flag: ON`` the body is
validated in the request, a job is stored with the validated data and the
user, and the answer is ``202`` with the job document. A worker later runs
the very same action method with that data and user; what it returns (body
and status code) becomes the job's ``result`` and ``result_status``.
``Prefer: respond-async, wait=N`` waits up to N seconds and answers inline
when the job finished by then.

The request itself is never stored: the worker builds a fresh one from the
job's payload (the validated data), its owner and ``Job.call`` (path, URL
arguments, query string and host of the original request).
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.http import Http404
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder

from jobs.api.responses import job_accepted_response
from jobs.api.views import idempotency_key_from
from jobs.conf import jobs_settings
from jobs.context import JobContext
from jobs.options import HEADER as OPTIONS_HEADER
from jobs.options import job_options_parse
from jobs.registry import AbandonHook, ActionResponse, OptionLimits, get_kind, job
from jobs.services import job_submit
from jobs.wait_limits import wait_slot
from jobs.waiting import wait_until_finished

if TYPE_CHECKING:
    from rest_framework.serializers import BaseSerializer
    from rest_framework.views import APIView

Action = Callable[..., Response]

_PREFERENCE = re.compile(r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("[^"]*"|[^,;\s]*))?""")


@dataclass(frozen=True)
class Preference:
    """What the client asked for in ``Prefer`` / ``X-Job-Flag``."""

    respond_async: bool = False
    wait: float | None = None
    #: The job was asked for in ``Prefer`` (then ``Preference-Applied`` says so).
    preferred: bool = False


def parse_preference(request: Request) -> Preference:
    """Read ``Prefer: respond-async[, wait=N]`` and the ``X-Job-Flag: ON`` alias.

    As RFC 7240 asks, preferences that are unknown or malformed (``wait=soon``)
    are ignored rather than refused. ``wait`` is capped by ``JOBS["PREFER_WAIT_MAX"]``.
    """
    flagged = request.headers.get("X-Job-Flag", "").strip().lower() == "on"
    preferred = False
    wait: float | None = None
    # Several Prefer headers arrive joined with commas; each preference may
    # carry parameters after ";", which we do not use.
    for item in request.headers.get("Prefer", "").split(","):
        match = _PREFERENCE.match(item.split(";", 1)[0])
        if not match:
            continue
        token, value = match.group(1).lower(), (match.group(2) or "").strip('"')
        if token == "respond-async":
            preferred = True
        elif token == "wait" and value.isascii() and value.isdigit():
            wait = min(float(value), float(jobs_settings.PREFER_WAIT_MAX))
    return Preference(respond_async=flagged or preferred, wait=wait, preferred=preferred)


def prefers_wait(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when raw ASGI ``headers`` carry ``Prefer: wait=N`` with N > 0.

    Such a request may wait for its job: the ASGI handler serves it on a
    thread of its own rather than on its fixed pool, whose threads every
    other request needs (``wait_until_finished`` then waits on the event loop).
    """
    for name, value in headers:
        if name.lower() != b"prefer":
            continue
        for item in value.decode("latin-1").split(","):
            match = _PREFERENCE.match(item.split(";", 1)[0])
            if match and match.group(1).lower() == "wait":
                number = (match.group(2) or "").strip('"')
                if number.isascii() and number.isdigit() and int(number) > 0:
                    return True
    return False


def runs_as_job(
    *,
    kind: str,
    input: type[BaseSerializer] | None = None,  # noqa: A002 - as in @job
    timeout: int | timedelta | None = None,
    max_attempts: int | None = None,
    ttl: int | timedelta | None = None,
    on_abandon: AbandonHook | None = None,
    retryable: bool = False,
    always: bool = False,
    queue: str = "default",
    priority: int = 0,
    per_owner_limit: int | None = None,
    per_owner_message: str = "",
    option_limits: OptionLimits | None = None,
) -> Callable[[Action], Action]:
    """Make a DRF view action (``post``, ``create``, an ``@action``...) job-capable.

    ``input`` validates the body in the request when a job is asked for (a
    bad body is a 400 and no job); default: the view's ``get_serializer_class()``
    when it has one. ``timeout``, ``max_attempts``, ``ttl`` and ``on_abandon``
    are the job kind's policies, as in ``@job``, and so are ``queue``,
    ``priority``, ``per_owner_limit``, ``per_owner_message`` and ``option_limits``. ``always=True`` makes every
    call a job (202 without any header), for operations that are always slow.
    ``retryable=True`` lets owners retry a failed or cancelled job, as in ``@job``.

    Inside the action, ``jobs.current_job().progress(...)`` reports progress
    when a worker runs it and does nothing in the request. Raise ``JobError``
    for a business failure: a failed job, or a 422 when run inline.
    """

    def decorate(func: Action) -> Action:
        module, qualname = func.__module__, func.__qualname__
        if "." not in qualname or "<locals>" in qualname:
            # The worker finds the view class again by its import path.
            raise TypeError("@runs_as_job decorates a method of a DRF view class defined in a module.")

        def handler(ctx: JobContext, payload: dict[str, Any]) -> ActionResponse:
            return run_action(_view_class(module, qualname), func, ctx=ctx, data=payload)

        # Named after the action, so registering the kind twice for the same
        # method (a module imported again) is recognised as harmless.
        handler.__module__, handler.__qualname__ = module, qualname
        job(
            kind,
            input=input,
            timeout=timeout,
            max_attempts=max_attempts,
            ttl=ttl,
            on_abandon=on_abandon,
            retryable=retryable,
            queue=queue,
            priority=priority,
            per_owner_limit=per_owner_limit,
            per_owner_message=per_owner_message,
            option_limits=option_limits,
        )(handler)

        @functools.wraps(func)
        def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
            preference = parse_preference(request)
            if not (always or preference.respond_async):
                # Inline, a key changes nothing; a malformed one is still refused.
                idempotency_key_from(request)
                return func(view, request, *args, **kwargs)
            return defer(view, request, kind=kind, input=input, preference=preference, kwargs=kwargs)

        wrapper.job_kind = kind  # type: ignore[attr-defined]
        wrapper.job_always = always  # type: ignore[attr-defined]
        return wrapper

    return decorate


def defer(
    view: APIView,
    request: Request,
    *,
    kind: str,
    input: type[BaseSerializer] | None,  # noqa: A002
    preference: Preference,
    kwargs: dict[str, Any],
) -> Response:
    """Store the request as a job of ``kind``; answer 202, or inline if it finished within ``wait``."""
    # The client's Job-Options, checked against the kind's bounds: a 400 and no job if wrong.
    options = job_options_parse(request.headers.get(OPTIONS_HEADER), kind=get_kind(kind), owner=request.user)
    # A wait takes one of the user's slots before anything is stored: over
    # the cap, 429 and no job.
    with wait_slot(user=request.user, lease=preference.wait) if preference.wait else nullcontext():
        serializer_class = input
        if serializer_class is None and hasattr(view, "get_serializer_class"):
            serializer_class = view.get_serializer_class()
        submission = job_submit(
            kind=kind,
            payload=request.data,
            owner=request.user,
            idempotency_key=idempotency_key_from(request),
            serializer_class=serializer_class,
            serializer_context=_serializer_context(view, request),
            call=call_of(view, request, kwargs),
            priority=options.priority,
            run_at=options.run_at,
            options=options.applied,
        )
        job = submission.job
        if preference.wait:
            job = wait_until_finished(job, timeout=preference.wait)
            if job.is_terminal and job.result_status is not None:
                response = Response(job.result, status=job.result_status)
                response["Vary"] = "Prefer, X-Job-Flag"
                return response
        response = job_accepted_response(job, request, replayed=not submission.created)
        if preference.preferred:
            response["Preference-Applied"] = "respond-async"
        response["X-Job-Flag"] = "ON"
        response["Vary"] = "Prefer, X-Job-Flag"
        return response


def call_of(view: APIView, request: Request, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the worker needs to rebuild this request: never the request itself."""
    return {
        "method": request.method,
        "path": request.path,
        "query": request.META.get("QUERY_STRING", ""),
        "kwargs": {key: str(value) for key, value in kwargs.items()},
        "host": request.get_host(),
        "secure": request.is_secure(),
        "action": getattr(view, "action", None),
    }


def run_action(
    view_class: type[APIView], func: Action, *, ctx: JobContext, data: Any
) -> ActionResponse:
    """Run ``func`` (an action of ``view_class``) in a worker as the job's owner; return its answer.

    Errors DRF turns into responses (validation, permission, not found)
    become the job's answer; any other exception is left to the runner
    (``JobError`` fails the job, the rest are retried).
    """
    call = ctx.call or {}
    kwargs = dict(call.get("kwargs") or {})
    django_request = _rebuild_request(call, data)
    user = _owner(ctx.owner_id)
    django_request.user = user

    view = view_class()
    # The owner was authenticated when the job was submitted; in the worker
    # the view's own authenticators (a token, a session) have nothing to
    # read, so the view gets one that answers with the owner. Permissions
    # and throttles then run as they did for the request.
    view.get_authenticators = lambda: [_AsOwner(user)]  # type: ignore[method-assign]
    view.args, view.kwargs = (), kwargs
    if call.get("action"):
        view.action = call["action"]
    request = view.initialize_request(django_request, **kwargs)
    view.request = request
    view.format_kwarg = None
    view.headers = view.default_response_headers
    try:
        response = func(view, request, **kwargs)
    except (APIException, Http404, PermissionDenied) as exc:
        response = view.handle_exception(exc)
    if not isinstance(response, Response):
        raise TypeError(
            f"{view_class.__name__} answered with {type(response).__name__}; a job-capable "
            "action must return a rest_framework Response."
        )
    # Stored exactly as the JSON renderer would have sent it.
    body = json.loads(json.dumps(response.data, cls=DRFJSONEncoder))
    return ActionResponse(status=response.status_code, body=body)


def _rebuild_request(call: dict[str, Any], data: Any) -> WSGIRequest:
    body = json.dumps(data, cls=DRFJSONEncoder).encode()
    host = call.get("host") or "localhost"
    server_name, _, port = host.partition(":")
    secure = bool(call.get("secure"))
    query = call.get("query") or ""
    if isinstance(query, dict):
        query = urlencode(query, doseq=True)
    return WSGIRequest(
        {
            "REQUEST_METHOD": call.get("method") or "POST",
            "PATH_INFO": call.get("path") or "/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": query,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": host,
            "SERVER_NAME": server_name,
            "SERVER_PORT": port or ("443" if secure else "80"),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "https" if secure else "http",
        }
    )


class _AsOwner(BaseAuthentication):
    """Authenticates a replayed request as the job's owner (see ``run_action``)."""

    def __init__(self, user: Any) -> None:
        self.user = user

    def authenticate(self, request: Request) -> tuple[Any, None]:
        return (self.user, None)


def _owner(owner_id: Any) -> Any:
    if owner_id is None:
        return AnonymousUser()
    return get_user_model()._default_manager.get(pk=owner_id)


def _view_class(module: str, qualname: str) -> type[APIView]:
    target: Any = import_module(module)
    for part in qualname.split(".")[:-1]:
        target = getattr(target, part)
    return target


def _serializer_context(view: APIView, request: Request) -> dict[str, Any]:
    if hasattr(view, "get_serializer_context"):
        return view.get_serializer_context()
    return {"request": request, "view": view, "format": None}
