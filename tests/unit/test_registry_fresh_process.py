"""The registry is complete in a fresh process, whatever ran first (issue 12, item 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]

EXPECTED = {"purchases.execute", "purchases.sales_report"}

LIST_KINDS = """
import json, django
django.setup()
from jobs.registry import all_kinds
print(json.dumps([kind.name for kind in all_kinds()]))
"""


@pytest.mark.parametrize("how", ["python -c (a worker or script)", "manage.py shell -c (a command)"])
def test_all_kinds_includes_every_job_capable_endpoint_in_a_fresh_process(how):
    if how.startswith("manage.py"):
        args = [sys.executable, str(BASE_DIR / "manage.py"), "shell", "-c", LIST_KINDS.replace("django.setup()", "")]
    else:
        args = [sys.executable, "-c", LIST_KINDS]
    env = dict(os.environ, DJANGO_SECRET_KEY=settings.SECRET_KEY, DJANGO_SETTINGS_MODULE="project.settings")
    done = subprocess.run(args, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert EXPECTED <= names, names
