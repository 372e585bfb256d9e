"""Body, header and open-file limits, against the real server (issue 11, defects 2 and 4).

Each test runs against ``manage.py serve`` (uvicorn and a django-q2 cluster)
and against the README's production command (its uvicorn line, on a free
port, with one worker so that the pid is the serving process). Requests go
over raw sockets: an anonymous client declaring a 1 GiB body, streaming a
chunked one, or sending 100 MiB of headers must be refused before the
server reads (or keeps) what it sends.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from django.conf import settings

from tests.support.processes import BASE_DIR, free_port, group_alive, serving, spawn, stop, wait_for

# The mark makes pytest-django create the test database, which the servers use.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
LOW_SOFT_NOFILE = 128  # the server must raise it to the hard limit


def readme_command() -> list[str]:
    """Return the README's production uvicorn command, as a list of arguments."""
    readme = (BASE_DIR / "README.md").read_text()
    # The command may sit indented in a list item's code block.
    lines = (line.strip() for line in readme.splitlines())
    line = next(line for line in lines if line.startswith("uvicorn project.asgi:application"))
    return shlex.split(line.split("#")[0])


def _with_options(args: list[str], **options: str) -> list[str]:
    """Replace the values of ``--option value`` pairs in ``args`` (``port`` for ``--port``)."""
    args = list(args)
    for name, value in options.items():
        args[args.index(f"--{name}") + 1] = value
    return args


@dataclass
class Server:
    """A server started for these tests; ``web_pid`` is the process that serves HTTP."""

    process: subprocess.Popen
    log: Path
    port: int
    web_pid: int = 0
    others: list[int] = field(default_factory=list)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        """Stop the command by its pid, then kill whatever it started that is still there."""
        try:
            stop(self.process, grace=20)
        finally:
            for pid in {self.web_pid, *self.others} - {0}:
                if group_alive(pid):  # each child of serve leads its own session
                    os.killpg(pid, signal.SIGKILL)


def launch(kind: str, tmp: Path, *, soft_nofile: int | None = None) -> Server:
    """Start ``manage.py serve`` or the README's command on a free port; wait until it answers."""
    port = free_port()
    log = tmp / f"{kind}-{port}.log"
    if kind == "serve":
        args = [sys.executable, str(BASE_DIR / "manage.py"), "serve", "--bind", f"127.0.0.1:{port}",
                "--web-workers", "1", "--grace", "5"]  # fmt: skip
    else:
        command = _with_options(readme_command(), host="127.0.0.1", port=str(port), workers="1")
        args = [sys.executable, "-m", *command]

    def lower_open_file_limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft_nofile, hard))

    process = spawn(args, log, preexec_fn=lower_open_file_limit if soft_nofile else None)
    server = Server(process, log, port, web_pid=process.pid)
    try:
        if kind == "serve":
            found = wait_for(
                lambda: re.search(r"\(pid (\d+)\), django-q2 cluster pid (\d+)", log.read_text()),
                timeout=30,
                what="serve to start its children",
            )
            server.web_pid, server.others = int(found[1]), [int(found[2])]

        def answers() -> bool:
            assert process.poll() is None, f"{kind} exited ({process.returncode})\n{server.logs()}"
            return serving(f"http://127.0.0.1:{port}")

        wait_for(answers, timeout=40, interval=0.2, what=f"{kind} to answer")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module", params=["serve", "readme"])
def server(request, django_db_setup, tmp_path_factory) -> Iterator[Server]:
    """One server per kind for this module, on the test database, always stopped by pid."""
    started = launch(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield started
    finally:
        started.stop()
        print(started.logs())  # shown when a test failed


# --- raw HTTP ---------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None
    body: dict | None
    closed: bool  # the server closed the connection after answering
    sent: int  # bytes of the request the client managed to send


def _parse(raw: bytes) -> tuple[int | None, dict | None]:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return None, None
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, {"raw": body[:200].decode(errors="replace")}


def exchange(port: int, head: bytes, payload: bytes = b"", *, repeat: int = 0, timeout: float = 10.0) -> Answer:
    """Send ``head``, then ``payload`` up to ``repeat`` times, until the server answers; read its answer.

    The payload goes out without blocking, so that an answer sent early (before
    the client has finished) is seen at once.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head)
    sock.setblocking(False)
    received, sent, pending, left = b"", 0, b"", repeat
    deadline = time.monotonic() + timeout
    closed = False
    try:
        while time.monotonic() < deadline and not received:
            try:
                received += sock.recv(65536)
                if not received:
                    closed = True
                break
            except BlockingIOError:
                pass
            if not pending and left:
                pending, left = payload, left - 1
            if not pending:
                # All sent: wait for the answer (or the deadline), not a fixed while.
                select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
                continue
            try:
                count = sock.send(pending)
                sent, pending = sent + count, pending[count:]
            except BlockingIOError:
                # The server reads no more for now: wait until it does, or answers.
                select.select([sock], [sock], [], max(0.0, deadline - time.monotonic()))
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        while not closed:
            chunk = sock.recv(65536)
            received += chunk
            closed = not chunk
    except (ConnectionResetError, BrokenPipeError):
        closed = True  # refused while the client was still sending
    except TimeoutError:
        pass
    finally:
        sock.close()
    status, body = _parse(received)
    return Answer(status, body, closed, sent)


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def assert_api_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.body is not None and answer.body["code"] == code and answer.body["detail"], answer
    assert answer.closed, "the connection must be closed: the rest of the request is never read"


# --- defect 2: bodies -------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_413_before_any_of_it_is_read(server: Server):
    head = request_head(
        "POST", "/api/purchases/", "Content-Type: application/json", f"Content-Length: {1024 * MiB}"
    )
    # Not a byte of the body is sent: the answer must come from Content-Length alone.
    answer = exchange(server.port, head, timeout=10)
    assert_api_error(answer, 413, "request_too_large")
    assert str(settings.API_MAX_BODY_BYTES) in answer.body["detail"]


def test_a_chunked_body_is_cut_off_once_over_the_limit(server: Server):
    head = request_head("POST", "/api/purchases/", "Content-Type: application/json", "Transfer-Encoding: chunked")
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"  # 16 KiB chunks, never the last one
    answer = exchange(server.port, head, chunk, repeat=64, timeout=10)
    assert_api_error(answer, 413, "request_too_large")


def test_bodies_within_the_limit_still_reach_the_api(server: Server):
    limit = settings.API_MAX_BODY_BYTES
    body = json.dumps({"goods": [], "payment_token": "x" * (limit - 100)}).encode().ljust(limit)
    headers = ("Connection: close", "Content-Type: application/json")
    declared = exchange(
        server.port, request_head("POST", "/api/purchases/", *headers, f"Content-Length: {limit}") + body
    )
    chunked = exchange(
        server.port,
        request_head("POST", "/api/purchases/", *headers, "Transfer-Encoding: chunked")
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
    )
    for answer in (declared, chunked):
        # Django read the whole body, then the API answered: anonymous.
        assert answer.status == 401, answer


# --- defect 2: headers ------------------------------------------------------------


def test_a_header_block_over_the_bound_is_431_and_memory_stays_flat(server: Server):
    before = rss_mib(server.web_pid)
    head = b"GET /api/products/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: "
    for _ in range(10):
        # Up to 100 MiB of one header; the server must answer long before.
        answer = exchange(server.port, head, b"a" * MiB, repeat=100, timeout=10)
        assert_api_error(answer, 431, "request_headers_too_large")
    after = rss_mib(server.web_pid)
    assert after < before + 50, f"RSS grew from {before:.0f} to {after:.0f} MiB"


def test_headers_within_the_bound_are_served(server: Server):
    cookie = "c=" + "v" * 32 * 1024
    answer = exchange(server.port, request_head("GET", "/api/products/", "Connection: close", f"Cookie: {cookie}"))
    assert answer.status == 401, answer  # anonymous: the API's answer, not the bound's
    page = exchange(server.port, request_head("GET", "/admin/login/", "Connection: close"))
    assert page.status == 200, page


# --- defect 4: open files ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["serve", "readme"])
def test_the_server_raises_its_open_file_limit_and_outlasts_many_idle_sockets(
    kind: str, django_db_setup, tmp_path: Path
):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4 * LOW_SOFT_NOFILE:
        pytest.skip(f"the hard open-file limit ({hard}) is too low to show the difference")
    started = launch(kind, tmp_path, soft_nofile=LOW_SOFT_NOFILE)
    sockets: list[socket.socket] = []
    try:
        limits = Path(f"/proc/{started.web_pid}/limits").read_text()
        soft_now = int(re.search(r"Max open files\s+(\d+)", limits)[1])
        assert soft_now == hard, limits
        # Each open stream holds one socket; idle connections hold them just the same.
        for _ in range(3 * LOW_SOFT_NOFILE):
            sockets.append(socket.create_connection(("127.0.0.1", started.port), timeout=5))
        answer = exchange(started.port, request_head("GET", "/api/products/", "Connection: close"), timeout=10)
        assert answer.status == 401, f"{answer}\n{started.logs()}"
    finally:
        for sock in sockets:
            sock.close()
        started.stop()
