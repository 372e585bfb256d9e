"""Shared fixtures: users, token clients, products, and a recording fake queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

import pytest
from rest_framework.test import APIClient

from jobs import queue
from tests.support.factories import token_client
from tests.support.processes import Launcher


# Modules that use the wait-slot files under var/ (jobs.wait_limits.SlotFileCache,
# which every process shares), directly or through a wait or an event stream,
# and count or empty them (fresh_wait_slots clears the whole directory).
WAIT_SLOT_MODULES = {
    "tests/integration/test_api_prefer_async.py",
    "tests/integration/test_api_streams.py",
    "tests/integration/test_bad_inputs.py",
    "tests/integration/test_openapi.py",
    "tests/integration/test_stream_revocation.py",
    "tests/integration/test_streams_live.py",
    "tests/integration/test_wait_limits.py",
    "tests/unit/test_actions.py",
    "tests/unit/test_stream_reads.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that share files under var/ one at a time (``--dist loadgroup``).

    Two groups, each on one xdist worker: the browser tests (the collected
    static files) and the wait-slot modules above (their ``fresh_wait_slots``
    empties the slot directory of every worker). The two may run side by side:
    the browser tests empty no slots, and a slot's key names its database.
    """
    root = config.rootpath
    for item in items:
        module = item.path.relative_to(root).as_posix()
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.xdist_group("browser"))
        elif module in WAIT_SLOT_MODULES:
            item.add_marker(pytest.mark.xdist_group("wait_slots"))
    _show_xdist_groups(config, items)


def _show_xdist_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` see the ``xdist_group`` marks again.

    pytest-xdist 3.8 tells the scheduler an item's group by appending
    "@group" to ``item._nodeid``; pytest 9.2 builds node ids from ``item._id``
    instead, so every group was silently ignored and grouped tests ran side
    by side (pytest-dev/pytest-xdist#1386). Set the id the way pytest now
    reads it, with xdist's own suffix (the sorted names joined by "_").
    """
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest, where xdist's own suffix takes effect
        return
    for item in items:
        names = sorted(
            {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
        )  # fmt: skip
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Any:
    """Hash the tests' passwords with one PBKDF2 iteration (see ``tests.support.hashers``)."""
    from django.conf import settings
    from django.test.utils import override_settings

    hashers = ["tests.support.hashers.FastPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    with override_settings(PASSWORD_HASHERS=hashers):
        yield


@pytest.fixture
def launcher(tmp_path) -> Any:
    """Start real processes (qcluster, uvicorn, ``manage.py`` commands); all stopped by pid at the end."""
    started = Launcher(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
        print(started.logs())  # shown by pytest only when the test failed


@dataclass
class FakeQueue:
    """Records what would have gone to django-q2."""

    enqueued: list[tuple[Any, str]] = field(default_factory=list)
    scheduled: list[tuple[Any, str, Any]] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return [str(job_id) for job_id, _ in self.enqueued]


@pytest.fixture(autouse=True)
def fake_queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeQueue | None:
    """Keep tests off the broker unless marked ``real_queue``."""
    if request.node.get_closest_marker("real_queue"):
        return None
    fake = FakeQueue()
    monkeypatch.setattr(queue, "enqueue", lambda job_id, kind, **_: fake.enqueued.append((job_id, kind)) or "fake-task")
    monkeypatch.setattr(queue, "enqueue_at", lambda job_id, kind, when: fake.scheduled.append((job_id, kind, when)))
    return fake


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Throttle counters live in the cache, keyed by user id, and ids repeat between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-pass-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="bob-pass-123")


@pytest.fixture
def api(user) -> APIClient:
    return token_client(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return token_client(other_user)


@pytest.fixture
def make_product(db) -> Callable[..., Any]:
    from purchases.models import Product

    counter = {"n": 0}

    def make(**overrides: Any) -> Product:
        counter["n"] += 1
        values = {
            "sku": f"SKU-{counter['n']}",
            "name": f"Product {counter['n']}",
            "price": Decimal("10.00"),
            "stock": 10,
        }
        values.update(overrides)
        return Product.objects.create(**values)

    return make
