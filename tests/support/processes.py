"""Start and stop real processes (qcluster, uvicorn, the serve command) against the test database.

``Launcher`` (the ``launcher`` fixture) is the one way tests start them: each
in its own session with its output in a log file, all stopped by pid at the
end of the test, failed or not.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from django.db import connection

from jobs.processes import stop_process_group

BASE_DIR = Path(__file__).resolve().parents[2]

UVICORN = [sys.executable, "-m", "uvicorn", "project.asgi:application"]


def database_url() -> str:
    """Return a DATABASE_URL for the database the tests are using right now."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: same database and secret key as the tests."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DJANGO_SETTINGS_MODULE="project.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def spawn(command: list[str], log: Path, *, preexec_fn: Callable[[], None] | None = None, **env: str) -> subprocess.Popen:
    """Start ``command`` in its own session with the tests' database, output to ``log``."""
    handle = open(log, "wb")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=child_env(**env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,  # noqa: PLW1509 - before exec only
    )
    process.log_handle = handle  # type: ignore[attr-defined]
    process.log_path = log  # type: ignore[attr-defined]
    return process


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """Start ``manage.py <args>`` in its own session, output to ``log``."""
    return spawn([sys.executable, str(BASE_DIR / "manage.py"), *args], log, **env)


def stop(process: subprocess.Popen, *, sig: int = signal.SIGTERM, grace: float = 20.0) -> int | None:
    """Signal the main process only, wait with a bound, then kill its whole group."""
    returncode = stop_process_group(process, grace=grace, sig=sig)
    process.log_handle.close()  # type: ignore[attr-defined]
    return returncode


def stop_each(processes: list[subprocess.Popen], *, grace: float = 15.0) -> None:
    """Stop every process (see ``stop``); raise the first failure once all were tried."""
    errors = []
    for process in processes:
        try:
            stop(process, grace=grace)
        except Exception as exc:  # noqa: BLE001 - keep stopping the others
            errors.append(exc)
    if errors:
        raise errors[0]


def group_alive(pgid: int) -> bool:
    """True while any process of the process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any, Any]:
    """Make a JSON request; return status, headers (case-insensitive) and decoded body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, error.headers, json.loads(raw) if raw else None


def start_uvicorn(port: int, log: Path, **env: str) -> subprocess.Popen:
    """Start one uvicorn worker process serving ``project.asgi`` (as ``manage.py serve`` does).

    With ``--workers 1`` uvicorn serves from the process it starts in: the
    returned pid is the server itself (for /proc figures), in its own session.
    """
    return spawn(
        [
            *UVICORN, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--lifespan", "off", "--no-server-header",
            # Open event streams would otherwise hold a SIGTERM until they end.
            "--timeout-graceful-shutdown", "3",
        ],  # fmt: skip
        log,
        **env,
    )


def serving(base: str) -> bool:
    """True once the server at ``base`` answers (an anonymous API call gets 401)."""
    try:
        status, _, _ = http("GET", f"{base}/api/products/")
    except OSError:
        return False
    return status == 401


def answers(url: str) -> bool:
    """True once something answers HTTP at ``url`` (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def log_tail(process: Any, chars: int = 4000) -> str:
    """The end of the output so far of a process started with a log, for assertion messages."""
    path = getattr(process, "log_path", None)
    if path is None or not os.path.exists(path):
        return ""
    return Path(path).read_text(errors="replace")[-chars:]


class Launcher:
    """Processes started for one test (qcluster, uvicorn, ``manage.py`` commands), all stopped by pid."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def _log(self, name: str) -> Path:
        return self.tmp_path / f"{name}-{len(self.processes)}.log"

    def spawn(self, command: list[str], name: str, **options: Any) -> subprocess.Popen:
        """Start any ``command`` (see ``spawn``); stopped with the others."""
        process = spawn(command, self._log(name), **options)
        self.processes.append(process)
        return process

    def manage(self, args: list[str], name: str = "", **env: str) -> subprocess.Popen:
        """Start ``manage.py <args>``; stopped with the others."""
        process = start(args, self._log(name or args[0]), **env)
        self.processes.append(process)
        return process

    def qcluster(self, name: str = "qcluster", *, ready: bool = False, **env: str) -> subprocess.Popen:
        """Start ``manage.py qcluster``; with ``ready``, wait until it says it is running."""
        process = self.manage(["qcluster"], name, **env)
        if ready:
            self.wait_ready(process)
        return process

    def wait_ready(self, process: subprocess.Popen, timeout: float = 30) -> None:
        """Wait until a cluster's log says "running."; fail with the logs if it exits first."""

        def running() -> bool:
            assert process.poll() is None, f"qcluster exited with {process.returncode}\n{self.logs()}"
            return "running." in process.log_path.read_text(errors="replace")  # type: ignore[attr-defined]

        wait_for(running, timeout=timeout, interval=0.1, what=f"qcluster {process.pid} to run")

    def uvicorn(self, **env: str) -> tuple[subprocess.Popen, str]:
        """Start one uvicorn worker on a free port (``start_uvicorn``); return it and its base URL once it answers."""
        port = free_port()
        process = start_uvicorn(port, self._log("uvicorn"), **env)
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, f"uvicorn exited ({process.returncode})\n{self.logs()}"
            return serving(base)

        wait_for(up, timeout=30, interval=0.1, what="uvicorn to answer")
        return process, base

    def logs(self) -> str:
        """The end of every started process's output, headed by its command and pid."""
        return "\n".join(
            f"--- {' '.join(map(str, p.args[1:4]))} (pid {p.pid})\n" + log_tail(p)  # type: ignore[index]
            for p in self.processes
        )

    def stop_all(self, grace: float = 15.0) -> None:
        """Stop every process still running (see ``stop``); raise the first failure once all were tried."""
        stop_each([p for p in self.processes if not p.log_handle.closed], grace=grace)  # type: ignore[attr-defined]
