"""Request limits enforced before Django reads a request: body size, header size, open files.

Django's ASGI handler reads a whole request body (spooling it to disk past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any middleware, authentication or
view runs, so the API parser's 413 came only after an anonymous client's
gigabyte had been read. ``RequestLimitsMiddleware`` wraps the Django
application and refuses a body over the limit from its ``Content-Length``,
before reading a byte of it, and a chunked body as soon as it passes the
limit. The limits are the existing settings: ``API_MAX_BODY_BYTES`` for
``/api/`` and Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` elsewhere (forms of
the shop and the admin; no page takes file uploads).

Header blocks are bounded while they are parsed, in the server
(``project/http_protocol.py``); the middleware's header check is a second
line for servers started without that protocol.
"""

from __future__ import annotations

import json
import resource
from typing import Any, Awaitable, Callable

from django.conf import settings

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def max_header_bytes() -> int:
    """Return the bound on a request's head (request line and headers), in bytes."""
    return int(getattr(settings, "HTTP_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES))


def max_body_bytes(path: str) -> int | None:
    """Return the body limit for a request to ``path``: the API's, or Django's form limit."""
    if path.startswith("/api/"):
        return int(settings.API_MAX_BODY_BYTES)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return None if limit is None else int(limit)


def error_response(status: int, detail: str, code: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Return the headers and JSON body of an API error answered before Django runs."""
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # What is left of the request is never read: the connection cannot
        # carry another request, and closing it frees the socket at once.
        (b"connection", b"close"),
    ]
    return headers, body


class RequestLimitsMiddleware:
    """An ASGI middleware that answers 413 and 431 before the wrapped app reads the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's head, then its body's size, then hand it to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        header_limit = max_header_bytes()
        if sum(len(name) + len(value) + 4 for name, value in headers) > header_limit:
            detail = f"The request headers are over the {header_limit}-byte limit."
            await _refuse(send, 431, detail, "request_headers_too_large")
            return
        limit = max_body_bytes(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = chunked = None
        for name, value in headers:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = value
        if declared is not None:
            # The server reads exactly Content-Length bytes, so checking the
            # declared length bounds the body; nothing of it has been read yet.
            if not (declared.isdigit() and int(declared) <= limit):
                await _refuse_body(send, limit)
                return
            await self.app(scope, receive, send)
            return
        if chunked is None:
            # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body.
            await self.app(scope, receive, send)
            return
        messages = await _read_bounded(receive, limit)
        if messages is None:
            await _refuse_body(send, limit)
            return
        await self.app(scope, _replay(messages, receive), send)


async def _read_bounded(receive: Receive, limit: int) -> list[Message] | None:
    """Read a body of unknown length up to ``limit`` bytes; None once it is over."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client left: the app sees the disconnect
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """Return a ``receive`` that gives ``messages`` first, then the server's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _refuse_body(send: Send, limit: int) -> None:
    await _refuse(send, 413, f"The request body is over the {limit}-byte limit.", "request_too_large")


async def _refuse(send: Send, status: int, detail: str, code: str) -> None:
    headers, body = error_response(status, detail, code)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the new soft limit.

    Each open event stream or long poll holds a socket: the usual soft limit
    of 1,024 descriptors let one user's streams shut everyone else out.
    Children started afterwards inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        # An unlimited hard limit cannot be the soft one on some systems
        # (macOS); keep the soft limit rather than fail to start.
        return soft
    return hard
