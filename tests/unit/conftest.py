"""Fixtures for the unit tests: job rows of the test kinds, run them, read them back."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.support import handlers  # noqa: F401 - registers the tests.* kinds


@pytest.fixture
def make_job(db, user) -> Callable[..., Any]:
    """Create a pending Job row directly (no validation, no queue)."""
    from jobs.models import Job
    from jobs.registry import get_kind

    def make(kind: str = "tests.noop", payload: dict[str, Any] | None = None, **fields: Any):
        try:
            max_attempts = get_kind(kind).max_attempts
        except LookupError:
            max_attempts = 3
        values = {"kind": kind, "owner": user, "payload": payload or {}, "max_attempts": max_attempts}
        values.update(fields)
        return Job.objects.create(**values)

    return make


@pytest.fixture
def reload() -> Callable[[Any], Any]:
    """Return a fresh copy of a model instance from the database."""

    def fresh(instance: Any) -> Any:
        return type(instance)._default_manager.get(pk=instance.pk)

    return fresh
