"""jobs.broker: the job table as django-q2's queue on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.utils import get_func_repr

from jobs import queue
from jobs.broker import JOB_ACK_PREFIX, JobTableBroker
from jobs.models import Job, JobStatus
from jobs.queue import job_package
from jobs.runner import run_job
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the job table broker needs PostgreSQL (SKIP LOCKED, LISTEN/NOTIFY); run with DATABASE_URL",
)
TABLE_QUEUE = {"name": "jobs", "orm": "default", "broker_class": queue.JOB_TABLE_BROKER}
# The broker's tests commit (transaction=True): it LISTENs on its connection,
# which hears a NOTIFY only once committed, and some take jobs from threads.


def delivered_ids(tasks) -> list[str]:
    return [str(ack).removeprefix(JOB_ACK_PREFIX) for ack, _ in tasks or [] if str(ack).startswith(JOB_ACK_PREFIX)]


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 10)
    monkeypatch.setattr(Conf, "POLL", 0.05)
    return JobTableBroker(list_key="jobs-test")


def test_a_job_package_names_the_runner_the_job_and_its_kind_only():
    now = timezone.now()
    package = SignedPackage.loads(job_package("0b7f4c1e-1d7e-4a3c-9a51-7c1b1f0b9a10", "tests.noop", now))

    # The function itself, which unpickling finds; django-q2 names it by its dotted path.
    assert package["func"] is run_job
    assert get_func_repr(package["func"]) == "jobs.runner.run_job"
    assert package["args"] == ("0b7f4c1e-1d7e-4a3c-9a51-7c1b1f0b9a10", "tests.noop")
    assert package["kwargs"] == {}
    # django-q2 need not keep a copy of what the job row keeps.
    assert package["save"] is False
    assert package["timeout"] > 5


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_pending_jobs_are_delivered_oldest_first_and_once(broker, make_job):
    now = timezone.now()
    jobs = [make_job(created_at=now - timedelta(seconds=10 - n)) for n in range(3)]

    first = broker.dequeue()
    again = broker.dequeue()

    assert delivered_ids(first) == [str(job.pk) for job in jobs]
    assert delivered_ids(again) == []
    assert Job.objects.filter(enqueued_at__isnull=False).count() == 3


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_jobs_not_due_cancelled_or_not_pending_are_not_delivered(broker, make_job):
    later = make_job(available_at=timezone.now() + timedelta(minutes=5))
    make_job(cancel_requested=True)
    make_job(status=JobStatus.PROCESSING, attempts=1)
    due_now = make_job(available_at=timezone.now() - timedelta(seconds=1))

    assert delivered_ids(broker.dequeue()) == [str(due_now.pk)]
    Job.objects.filter(pk=later.pk).update(available_at=timezone.now())
    assert delivered_ids(broker.dequeue()) == [str(later.pk)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_delivered_job_nobody_claimed_is_delivered_again_after_lost_after(broker, make_job, settings):
    settings.JOBS = {**settings.JOBS, "LOST_AFTER": 60}
    job = make_job()
    assert delivered_ids(broker.dequeue()) == [str(job.pk)]

    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(seconds=61))

    assert delivered_ids(broker.dequeue()) == [str(job.pk)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_brokers_taking_at_once_never_deliver_the_same_job(make_job, monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 7)
    monkeypatch.setattr(Conf, "POLL", 0.01)
    ids = {str(make_job().pk) for _ in range(200)}
    seen: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def drain(slot: int) -> None:
        mine = JobTableBroker(list_key="jobs-test")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(seen[0]) + len(seen[1]) < len(ids):
                seen[slot].extend(delivered_ids(mine.dequeue()))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert sorted(seen[0] + seen[1]) == sorted(ids)
    assert not set(seen[0]) & set(seen[1])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_waiting_broker_wakes_on_notify_not_on_its_poll_interval(make_job, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 10)
    waiting = JobTableBroker(list_key="jobs-test")
    result: dict[str, object] = {}
    emptied = threading.Event()

    def wait_then_take() -> None:
        try:
            assert waiting.dequeue() is None  # nothing yet: the queue is drained
            emptied.set()
            result["tasks"] = waiting.dequeue()  # waits for a NOTIFY, then takes
            result["woke_after"] = time.monotonic() - result["submitted"]  # type: ignore[operator]
        finally:
            connections.close_all()

    thread = threading.Thread(target=wait_then_take)
    thread.start()
    assert emptied.wait(timeout=10)
    result["submitted"] = time.monotonic()
    job = make_job()
    thread.join(timeout=15)

    assert not thread.is_alive()
    assert result["woke_after"] < 2, result
    assert delivered_ids(result["tasks"]) == [str(job.pk)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_other_django_q2_tasks_go_through_the_orm_queue(broker):
    task = SignedPackage.dumps({"id": "t1", "name": "t1", "func": "math.floor", "args": (1.5,), "kwargs": {}})

    ack = broker.enqueue(task)
    delivered = broker.dequeue()

    assert delivered == [(ack, task)]
    broker.acknowledge(ack)
    assert not OrmQ.objects.filter(pk=ack).exists()
    # A job's acknowledgement touches nothing: its row says how it ended.
    broker.acknowledge(f"{JOB_ACK_PREFIX}0b7f4c1e-1d7e-4a3c-9a51-7c1b1f0b9a10")


@pytest.mark.real_queue
@pytest.mark.django_db
def test_with_the_table_as_queue_enqueue_only_marks_a_job_undelivered(make_job):
    job = make_job(enqueued_at=timezone.now())
    with override_settings(Q_CLUSTER=TABLE_QUEUE):
        assert queue.uses_job_table()
        assert queue.enqueue(job.pk, job.kind) == ""
        assert Job.objects.get(pk=job.pk).enqueued_at is None
        assert queue.initial_enqueued_at(timezone.now()) is None
        assert queue.retry_enqueued_at(timezone.now()) is None


MESSAGE_QUEUE = {"name": "jobs", "orm": "default"}  # django-q2's own ORM broker: a message per job


@pytest.mark.real_queue
def test_a_message_broker_is_sent_the_job_task(make_job, monkeypatch):
    job = make_job(enqueued_at=None)
    sent: list[str] = []

    class Recording:
        def enqueue(self, package: str) -> int:
            sent.append(package)
            return 1

    monkeypatch.setattr(queue, "_process_broker", Recording)
    with override_settings(Q_CLUSTER=MESSAGE_QUEUE):
        assert not queue.uses_job_table()
        task_id = queue.enqueue(job.pk, job.kind)

    [task] = [SignedPackage.loads(package) for package in sent]
    assert (task["id"], task["func"], task["args"]) == (task_id, run_job, (str(job.pk), job.kind))
    stored = Job.objects.get(pk=job.pk)
    assert stored.task_id == task_id and stored.enqueued_at is not None


@pytest.mark.real_queue
def test_in_django_q2_sync_mode_enqueue_runs_the_job_at_once(make_job, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    job = make_job()
    with override_settings(Q_CLUSTER=MESSAGE_QUEUE):
        queue.enqueue(job.pk, job.kind)

    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_broker_whose_connection_dies_while_it_waits_reconnects_and_delivers(make_job, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0.5)
    waiting = JobTableBroker(list_key="jobs-test")
    result: dict[str, object] = {}
    emptied = threading.Event()

    def wait_then_take() -> None:
        try:
            assert waiting.dequeue() is None  # drained: the next call waits on LISTEN
            result["backend"] = connection.connection.info.backend_pid
            emptied.set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not result.get("tasks"):
                result["tasks"] = waiting.dequeue()
        finally:
            connections.close_all()

    thread = threading.Thread(target=wait_then_take)
    thread.start()
    assert emptied.wait(timeout=10)
    with connection.cursor() as cursor:  # what a database restart does to it
        cursor.execute("SELECT pg_terminate_backend(%s)", [result["backend"]])
    job = make_job()
    thread.join(timeout=30)

    assert not thread.is_alive()
    assert delivered_ids(result["tasks"]) == [str(job.pk)]
