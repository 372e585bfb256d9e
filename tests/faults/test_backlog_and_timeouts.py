"""A backlog deeper than the workers, and handlers that run past their timeout."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from jobs import submit
from jobs.models import Job, JobEvent, JobEventType, JobStatus
from jobs.recovery import reap_task
from purchases.models import Order, OrderStatus, PaymentCharge, Product
from tests.faults import fault_handlers
from tests.faults.support import (
    FAULT_ENV,
    KILL_MARGIN,
    PURCHASES_TIMEOUT,
    executions,
    pid_alive,
    runs,
    settle,
    status_counts,
    worker_pid,
)
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]


def test_backlog_of_slow_jobs_has_every_side_effect_exactly_once(clusters, user):
    # Ten 5 s jobs for two workers: the last ones wait ~20 s in django-q2's
    # in-memory queue after pickup, while `retry` is only just above what
    # the jobs.E001 check allows.
    retry = int(FAULT_ENV["Q_RETRY"])
    assert retry == fault_handlers.SLEEP_TIMEOUT + KILL_MARGIN + 30 + 1
    jobs = [submit("faults.sleep", {"seconds": 5, "n": n}, owner=user) for n in range(10)]
    ids = [job.pk for job in jobs]
    started = time.monotonic()
    clusters.start(Q_WORKERS="2", Q_RETRY=str(retry))

    settle(ids, timeout=60, logs=clusters.logs)
    elapsed = time.monotonic() - started

    assert status_counts(ids) == {JobStatus.COMPLETED: 10}, clusters.logs()
    assert sorted(executions()) == sorted(str(pk) for pk in ids)
    assert sorted(runs()) == sorted(str(pk) for pk in ids)
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    assert JobEvent.objects.filter(job_id__in=ids, type=JobEventType.CLAIMED).count() == 10
    # Two workers: about 25 s. Much less would mean more than two ran at once.
    assert elapsed >= 24, elapsed


def test_handler_over_its_timeout_ends_failed_timeout_not_stuck(clusters, user, make_product):
    product = make_product(stock=4)
    # The payment provider answers after the purchase's timeout.
    cluster = clusters.start(PURCHASES_PAYMENT_DELAY=str(PURCHASES_TIMEOUT + 30))
    overrun = submit("faults.overrun", {"seconds": 60}, owner=user)
    purchase = submit("purchases.execute", {"goods": [{"product_id": product.pk, "quantity": 3}]}, owner=user)
    # This one swallows the timeout (like code stuck in a C call): django-q2
    # must kill its worker, and the reaper then ends the job.
    stubborn = submit("faults.stubborn", {"seconds": 60}, owner=user)
    started = time.monotonic()
    seen: dict[str, bool] = {}

    def reap_watching_the_stubborn_worker() -> None:
        stubborn.refresh_from_db()
        if stubborn.worker:
            alive = pid_alive(worker_pid(stubborn))
            reap_task()
            if Job.objects.filter(pk=stubborn.pk, status__in=JobStatus.terminal()).exists():
                seen.setdefault("worker_alive_when_ended", alive)

    settle([overrun.pk, stubborn.pk, purchase.pk], timeout=40, reap=reap_watching_the_stubborn_worker,
           interval=0.2, logs=clusters.logs)  # fmt: skip
    elapsed = time.monotonic() - started

    overrun.refresh_from_db()
    assert overrun.status == JobStatus.FAILED, clusters.logs()
    assert overrun.error["code"] == "timeout", overrun.error
    assert overrun.attempts == 1 and overrun.lease_expires_at is None
    limit = timedelta(seconds=fault_handlers.OVERRUN_TIMEOUT)
    assert limit <= overrun.finished_at - overrun.started_at < limit + timedelta(seconds=2)
    assert len(runs([overrun.pk])) == 1

    purchase.refresh_from_db()
    assert purchase.status == JobStatus.FAILED, clusters.logs()
    assert purchase.error["code"] == "timeout", purchase.error
    # The engine undid the partial purchase: stock back, nothing charged.
    assert Order.objects.get(job=purchase).status == OrderStatus.RELEASED
    assert Product.objects.get(pk=product.pk).stock == 4
    assert not PaymentCharge.objects.filter(refunded=False).exists()

    stubborn.refresh_from_db()
    assert stubborn.status == JobStatus.FAILED, clusters.logs()
    assert stubborn.error["code"] in ("timeout", "worker_lost"), stubborn.error
    assert stubborn.attempts == 1 and len(runs([stubborn.pk])) == 1
    # Its lease outlasted the worker: nobody gave the job up (or could have
    # handed it to another worker) while the stubborn handler still ran.
    assert seen == {"worker_alive_when_ended": False}, clusters.logs()
    assert elapsed < 30, elapsed
    wait_for(lambda: "after timeout" in cluster.log_path.read_text(), timeout=10,
             what="django-q2 to report the killed worker")  # fmt: skip
