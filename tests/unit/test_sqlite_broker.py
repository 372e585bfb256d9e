"""jobs.sqlite_broker: the ORM broker on SQLite looks at its queue when the file has a new commit."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf

from jobs.sqlite_broker import SqliteWakeBroker

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="watches a SQLite file; runs on the SQLite suite"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def broker(monkeypatch):
    # A poll interval far longer than the test: anything it sees, it saw by the wake-up.
    monkeypatch.setattr(Conf, "POLL", 600.0)
    broker = SqliteWakeBroker(list_key="jobs-sqlite-test")
    broker.dequeue()  # the first look
    broker.dequeue()  # reads the file's commit counter
    return broker


def test_an_idle_broker_does_not_query_the_queue(broker):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            assert broker.dequeue() is None

    assert len(queries) == 0


def test_a_task_committed_by_another_connection_is_taken_on_the_next_call(broker):
    enqueued = SqliteWakeBroker(list_key="jobs-sqlite-test").enqueue("a signed package")

    taken = broker.dequeue()

    assert taken == [(enqueued, "a signed package")]
    # Taken means locked until django-q2's retry time: the next look finds nothing.
    SqliteWakeBroker(list_key="jobs-sqlite-test").enqueue("another")
    assert [payload for _, payload in broker.dequeue()] == ["another"]


def test_without_a_file_to_watch_it_falls_back_to_polling(broker, monkeypatch, caplog):
    broker._watch = None
    monkeypatch.setitem(connection.settings_dict, "NAME", "/nonexistent/dir/db.sqlite3")

    assert broker._changed() is True
    assert broker._changed() is False  # no longer tries; the poll interval takes over
    assert "Cannot watch the SQLite database" in caplog.text
