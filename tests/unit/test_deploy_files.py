"""The production guide's commands are the same in README.md, the systemd units and the Procfile.

``deploy/smoke.sh`` runs the Procfile's; these tests keep the other two copies equal to it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Production"):readme.index("\n## ", readme.index("## Production") + 1)]


def readme_command(start: str) -> list[str]:
    """The README "Production" code line that starts with ``start``, as arguments."""
    for line in production_section().splitlines():
        if line.strip().startswith(start):
            return shlex.split(line.split("#")[0])
    raise AssertionError(f"no {start!r} command in README's Production section")


def exec_start(unit: str) -> list[str]:
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    command = shlex.split(re.search(r"^ExecStart=(.*)$", text, re.M).group(1))
    command[0] = Path(command[0]).name  # /srv/jobs/.venv/bin/uvicorn -> uvicorn
    return command


def procfile(name: str) -> list[str]:
    text = (ROOT / "Procfile").read_text()
    return shlex.split(re.search(rf"^{name}: (.*)$", text, re.M).group(1))


def test_web_command_is_the_same_everywhere():
    readme = readme_command("uvicorn ")
    assert exec_start("jobs-web.service") == readme
    platform = procfile("web")
    # The one difference: a platform's router reaches the process on $PORT.
    assert platform[platform.index("--host") + 1] == "0.0.0.0"
    assert platform[platform.index("--port") + 1] == "${PORT:-8000}"
    for option in ("--host", "--port"):
        for command in (readme, platform):
            del command[command.index(option):command.index(option) + 2]
    assert platform == readme
    assert "project.http_protocol:LimitedHttpToolsProtocol" in readme


def test_worker_command_is_the_same_everywhere():
    readme = readme_command("python manage.py qcluster")
    assert exec_start("jobs-worker.service") == readme
    assert procfile("worker") == readme


def test_units_read_the_documented_environment_file():
    for unit in ("jobs-web.service", "jobs-worker.service"):
        assert "EnvironmentFile=/etc/jobs/production.env" in (ROOT / "deploy" / "systemd" / unit).read_text()
    assert "/etc/jobs/production.env" in production_section()
