"""The one line every benchmarked handler runs first: tell the bench when it started.

``report_started(label)`` sends ``"<label> <time.time()>"`` as a UDP datagram to
``BENCH_UDP`` (``host:port``, set by ``bench/throughput.py`` for every worker it
starts); without it, it does nothing. Standard library only: the peers import it.
"""

from __future__ import annotations

import os
import socket
import time

_target: tuple[socket.socket, tuple[str, int]] | None = None


def report_started(label: str) -> None:
    """Send this handler's start time for ``label``; the clock is read first."""
    started = time.time()
    global _target
    if _target is None:
        address = os.environ.get("BENCH_UDP")
        if not address:
            return
        host, port = address.rsplit(":", 1)
        _target = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), (host, int(port)))
    sock, addr = _target
    sock.sendto(f"{label} {started!r}".encode(), addr)
