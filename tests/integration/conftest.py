"""Fixtures for the integration tests: a real uvicorn worker, and fresh wait slots."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from jobs.conf import jobs_settings
from tests.support.processes import stop


@pytest.fixture
def fresh_wait_slots():
    """Slots outlive a test in the shared cache; user ids repeat between tests."""
    caches[jobs_settings.WAIT_SLOTS_CACHE].clear()
    yield
    caches[jobs_settings.WAIT_SLOTS_CACHE].clear()


@pytest.fixture
def server(transactional_db, launcher):
    """Start one uvicorn worker with the given environment; stopped by pid at the end."""
    started: list[Any] = []

    def launch(**env: str) -> str:
        process, base = launcher.uvicorn(**env)
        started.append(process)
        return base

    yield launch
    for process in started:
        stop(process, grace=5)
        log = process.log_path.read_text(errors="replace")
        print(log[-4000:])
        assert "Traceback" not in log, log[-4000:]
