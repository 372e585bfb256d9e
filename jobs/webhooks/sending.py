"""One HTTP POST to a checked destination: pinned to the checked addresses, no redirects.

``http.client`` follows no redirects (a 3xx is just an answer), and each
connection goes to an address ``check_destination`` approved, never to a
fresh DNS answer. Only the first bytes of the answer are read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any

from jobs.webhooks.destinations import Destination

MAX_RESPONSE_BYTES = 64 * 1024
MAX_ADDRESSES = 3


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(destination: Destination, *, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int | None, str]:
    """POST ``body``; return the status code (None if there was no answer) and an error text."""
    last_error = "no address to connect to"
    # At most three addresses, so an attempt lasts at most three timeouts (the task's limit).
    for address in destination.addresses[:MAX_ADDRESSES]:
        connection_class: Any = _PinnedHTTPSConnection if destination.secure else _PinnedHTTPConnection
        conn = connection_class(destination.host, destination.port, address=address, timeout=timeout)
        try:
            conn.request("POST", destination.target, body=body, headers=headers)
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            return response.status, ""
        except (OSError, http.client.HTTPException) as exc:
            # Try the host's next address; the last error is the one recorded.
            last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            conn.close()
    return None, last_error
