"""A real webhook receiver on loopback for the tests: checks each signature, counts deliveries.

A thread runs ``http.server`` on 127.0.0.1 and a free port; ``fail_first``
makes it answer 500 to its first requests. It verifies the Standard
Webhooks signature as a client would (its own code, not the server's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the receiver got, and how it answers."""

    port: int = 0
    secret: str = ""
    fail_first: int = 0
    fail_status: int = 500
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}/hooks/jobs"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """Check ``webhook-signature`` with the secret, as the README's receiver example does."""
        if not self.secret.startswith("whsec_"):
            return False
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        offered = [item.split(",", 1)[1] for item in headers.get("webhook-signature", "").split() if "," in item]
        fresh = abs(time.time() - int(headers.get("webhook-timestamp", "0"))) < 300
        return fresh and any(hmac.compare_digest(expected, value) for value in offered)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Return the requests once there are ``count``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    """Start a receiver; stop it with ``server.shutdown(); server.server_close()``."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            with receiver.lock:
                failing = len(receiver.received) < receiver.fail_first
                answered = receiver.fail_status if failing else 204
                receiver.received.append(Received(headers, body, receiver.verify(headers, body), answered))
            self.send_response(answered)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


@pytest.fixture
def receiver() -> Any:
    """A running receiver, stopped at the end of the test (import it into a test module)."""
    started, server = start_receiver()
    try:
        yield started
    finally:
        server.shutdown()
        server.server_close()
