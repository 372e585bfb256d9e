"""Run the web server (uvicorn, ASGI) and a django-q2 cluster together.

uvicorn serves ``project.asgi``: long polls and event streams are async
views, so a waiting client costs no thread, only a socket; the command
raises its open-file limit to the hard limit first, and the children
inherit it. uvicorn parses requests with ``project/http_protocol.py``,
which refuses request heads over ``HTTP_MAX_HEADER_BYTES``.

Each child gets its own session, so a Ctrl-C in the terminal reaches only this
command, which then stops the children one main process at a time. Sending
SIGTERM to every process of a django-q2 cluster at once can leave its main
process hung; signalling only the main process and waiting lets it stop its
workers itself. Whatever is left after the grace period is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.processes import stop_process_groups
from project.limits import raise_open_file_limit

# The production command's HTTP protocol (README, "Production").
HTTP_PROTOCOL = "project.http_protocol:LimitedHttpToolsProtocol"


class Command(BaseCommand):
    help = "Run uvicorn (ASGI) and `manage.py qcluster` together; Ctrl-C stops both."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--grace",
            type=float,
            default=30.0,
            help="Seconds to let running jobs and requests finish on shutdown.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["web_workers"] < 1 or options["grace"] < 0:
            raise CommandError("--web-workers must be at least 1 and --grace not negative.")
        # Before the children start, so that they inherit it.
        open_files = raise_open_file_limit()
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: stop.set())

        children = {
            "web": self._start(self._web_command(options)),
            "worker": self._start([sys.executable, self._manage_py(), "qcluster"]),
        }
        self.stdout.write(
            f"Web server on http://{options['bind']}/ (pid {children['web'].pid}), "
            f"django-q2 cluster pid {children['worker'].pid}, up to {open_files} open files each. "
            "Ctrl-C stops both."
        )
        failed = None
        while not stop.wait(0.5):
            failed = next((name for name, p in children.items() if p.poll() is not None), None)
            if failed:
                self.stderr.write(f"The {failed} process exited ({children[failed].returncode}).")
                break
        self.stdout.write("Stopping...")
        stop_process_groups(children.values(), grace=options["grace"])
        self.stdout.write("Stopped.")
        if failed:
            sys.exit(1)

    def _web_command(self, options: dict[str, Any]) -> list[str]:
        module, _, attribute = settings.ASGI_APPLICATION.rpartition(".")
        host, _, port = options["bind"].rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise CommandError("--bind takes HOST:PORT, e.g. 127.0.0.1:8000.")
        return [
            sys.executable, "-m", "uvicorn", f"{module}:{attribute}",
            "--host", host.strip("[]"),
            "--port", port,
            "--workers", str(options["web_workers"]),
            "--timeout-graceful-shutdown", "10",
            "--lifespan", "off",
            "--no-server-header",
            "--http", HTTP_PROTOCOL,
        ]  # fmt: skip

    @staticmethod
    def _manage_py() -> str:
        candidate = os.path.abspath(sys.argv[0])
        if os.path.basename(candidate) == "manage.py":
            return candidate
        raise CommandError("Run this command as `python manage.py serve`.")

    @staticmethod
    def _start(command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(command, start_new_session=True)
