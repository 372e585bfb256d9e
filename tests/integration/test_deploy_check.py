"""`manage.py check --deploy` with the production environment the guide documents.

The variables are read from ``deploy/production.env.example`` itself (with a
real secret key in place of its placeholder), so the file the README points
to is the one that passes. Without the HTTPS ones, the same check warns.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "production.env.example"
HTTPS_VARIABLES = {"DJANGO_HTTPS", "DJANGO_TRUST_X_FORWARDED_PROTO"}


def documented_environment() -> dict[str, str]:
    """The VAR=value lines of deploy/production.env.example."""
    variables = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


def check_deploy(variables: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `manage.py check --deploy --fail-level WARNING` with only ``variables`` set."""
    environment = {
        name: value for name, value in os.environ.items() if name in {"PATH", "HOME", "LANG", "TMPDIR"}
    }
    environment.update(variables, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )


def test_documented_production_environment_passes_check_deploy():
    variables = documented_environment()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", *HTTPS_VARIABLES} <= variables.keys()

    result = check_deploy(variables)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_without_the_https_variables_check_deploy_warns():
    variables = {k: v for k, v in documented_environment().items() if k not in HTTPS_VARIABLES}

    result = check_deploy(variables)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr
