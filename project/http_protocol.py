"""uvicorn's httptools protocol with a bound on each request's head.

Run uvicorn with ``--http project.http_protocol:LimitedHttpToolsProtocol``
(``manage.py serve`` does; so does the README's production command).

httptools has no limit on the request line or headers: it keeps whatever
arrives until the blank line, so a client sending 100 MiB of one header
grew a web process by that much (and the allocator kept the memory). This
protocol counts the bytes of a head while it is still open and, past
``HTTP_MAX_HEADER_BYTES`` (64 KiB), answers 431 and closes the connection
without parsing further (reading and dropping what still comes for up to
``LINGER_SECONDS``, so that the client gets the answer). At most one read (256 KiB) past the bound is ever
held. uvicorn's h11 protocol has its own bound
(``--h11-max-incomplete-event-size``) but parses several times slower.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from project.limits import error_response, max_header_bytes

_IDLE, _HEAD, _BODY = "idle", "head", "body"

# How long a refused connection is still read (and what arrives dropped)
# after its 431 went out, before it is closed. Closing a socket with unread
# data makes the kernel send a reset, which can destroy the 431 before the
# client has read it; nginx calls this a lingering close.
LINGER_SECONDS = 2.0


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers 431 to a request head over ``HTTP_MAX_HEADER_BYTES``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head = max_header_bytes()
        self._phase = _IDLE
        self._heads_begun = 0
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the request if its head is still open past the bound."""
        if self._refused:
            return  # the rest of a refused head: read so it causes no reset, and dropped
        phase, heads_begun = self._phase, self._heads_begun
        super().data_received(data)
        if self._phase != _HEAD or self.transport.is_closing():
            return
        # Count ``data`` only when all of it went to the open head: the same
        # head as before, or a new one on a connection that was idle. (A read
        # that ends one pipelined request and starts the next is not counted,
        # so the bound is never hit early; it is at most one read late.)
        if self._heads_begun == heads_begun or (phase == _IDLE and self._heads_begun == heads_begun + 1):
            self._head_bytes += len(data)
        if self._head_bytes > self._max_head:
            self._refuse_head()

    def on_message_begin(self) -> None:
        """Start counting a new request's head."""
        super().on_message_begin()
        self._phase = _HEAD
        self._heads_begun += 1
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """Stop counting: the head is complete."""
        self._phase = _BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Wait for the next request."""
        self._phase = _IDLE
        super().on_message_complete()

    def _refuse_head(self) -> None:
        headers, body = error_response(
            431, f"The request headers are over the {self._max_head}-byte limit.", "request_headers_too_large"
        )
        lines = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        lines += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join(lines) + b"\r\n" + body)
        self._refused = True
        if self.transport.can_write_eof():
            # The answer, then end of file: the client reads both, and stops.
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
        self.logger.warning("Request headers over %d bytes: answered 431 and closed.", self._max_head)
