"""Workers killed under a running job: a new cluster finishes it once, a poison job ends.

The job row's ``worker`` field ("host:pid") names the django-q2 worker
process running it; the tests SIGKILL that process, never anything else.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Task

from jobs import submit
from jobs.models import Job, JobEvent, JobEventType, JobStatus
from jobs.recovery import reap_task
from purchases.models import Order, OrderStatus, PaymentCharge, Product
from tests.faults.support import paying, runs, send_duplicate, settle, status_counts
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]

# Leases expire sooner with a short grace, so each lost attempt is noticed in
# seconds. Safe here: these handlers never run past their timeout, so the
# lease never has to outlast django-q2 killing a stuck worker.
SHORT_GRACE = "2"


def test_worker_killed_mid_purchase_a_new_cluster_completes_it_once(
    clusters, reaper_schedule, user, make_product
):
    product = make_product(stock=5, price=Decimal("10.00"))
    # A long django-q2 `retry`: the task's own re-delivery cannot be what
    # recovers the job within this test; only the reaper can.
    first = clusters.start("first", PURCHASES_PAYMENT_DELAY="3", Q_RETRY="300")
    job = submit("purchases.execute", {"goods": [{"product_id": product.pk, "quantity": 2}]}, owner=user)

    wait_for(lambda: paying(job), timeout=30, interval=0.05, what="the purchase to reach the payment")
    clusters.kill_worker(job, first)
    clusters.stop(first)

    job.refresh_from_db()
    assert job.status == JobStatus.PROCESSING and job.attempts == 1
    assert Order.objects.get(job=job).status == OrderStatus.RESERVED
    assert Product.objects.get(pk=product.pk).stock == 3
    assert PaymentCharge.objects.count() == 0

    # No reap_task() from here: the "jobs.reap" schedule, run by the new
    # cluster's scheduler (it looks every ~30 s), must notice the expired
    # lease and queue the job again on its own.
    started = time.monotonic()
    clusters.start("second", PURCHASES_PAYMENT_DELAY="0.5", Q_RETRY="300")
    settle([job.pk], timeout=75, logs=clusters.logs)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, (job.error, clusters.logs())
    assert job.attempts == 2
    assert JobEvent.objects.filter(job=job, type=JobEventType.ATTEMPT_FAILED, actor="reaper").count() == 1
    order = Order.objects.get()
    assert order.job_id == job.pk and order.status == OrderStatus.PAID
    assert job.result["order_id"] == order.pk
    assert Product.objects.get(pk=product.pk).stock == 3
    charge = PaymentCharge.objects.get()
    assert charge.amount == Decimal("20.00") and not charge.refunded
    assert order.payment_reference == charge.reference
    print(f"scheduled reaper recovered the job {elapsed:.1f}s after the new cluster started")


def test_poison_job_fails_worker_lost_after_max_attempts_and_runs_no_more(clusters, user):
    cluster = clusters.start(JOBS_LEASE_GRACE=SHORT_GRACE)
    job = submit("faults.kill_self", {}, owner=user)
    assert job.max_attempts == 3

    # The reaper hands the job back after each lost attempt but the last...
    def last_attempt_lost() -> bool:
        job.refresh_from_db()
        if job.attempts < job.max_attempts:
            reap_task()
            return False
        return len(runs([job.pk])) == job.max_attempts and job.lease_expires_at < timezone.now()

    wait_for(last_attempt_lost, timeout=60, interval=0.2, what="the last attempt to die")
    assert job.status == JobStatus.PROCESSING
    # ...and then django-q2 delivers a killed task again (after `retry`; sent
    # here at once): the runner's own attempts cap ends the job, where
    # django-q2's max_attempts, counting saved results only, never would.
    send_duplicate(job.pk, job.kind)
    settle([job.pk], timeout=30, logs=clusters.logs)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED, (job.error, clusters.logs())
    assert job.error["code"] == "worker_lost"
    assert job.attempts == job.max_attempts
    assert job.lease_expires_at is None and job.finished_at is not None
    failed = JobEvent.objects.get(job=job, type=JobEventType.FAILED)
    assert failed.actor.startswith("worker:"), failed.actor
    assert len(runs([job.pk])) == job.max_attempts
    assert cluster.log_path.read_text().count("after death") == job.max_attempts
    before = (job.status, job.attempts, job.finished_at, job.error)

    # Later duplicate deliveries find nothing to claim and run nothing...
    task_id = send_duplicate(job.pk, job.kind)
    wait_for(lambda: Task.objects.filter(id=task_id).exists(), timeout=20, what="the extra delivery")
    # ...and for a while longer than a lease, neither the reaper nor anyone touches it.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert reap_task() == {"requeued": 0, "failed": 0, "resent": 0, "webhooks": 0}
        job.refresh_from_db()
        assert (job.status, job.attempts, job.finished_at, job.error) == before
        assert len(runs([job.pk])) == job.max_attempts
        time.sleep(0.5)  # paces the looks: watching nothing happen for 4 s is the scenario
    assert cluster.poll() is None, "the cluster died with its workers"


def test_purchases_whose_worker_always_dies_fail_and_give_the_stock_back(clusters, user, make_product):
    product = make_product(stock=5, price=Decimal("7.00"))
    cluster = clusters.start(PURCHASES_PAYMENT_DELAY="3", JOBS_LEASE_GRACE=SHORT_GRACE)
    jobs = [
        submit("purchases.execute", {"goods": [{"product_id": product.pk, "quantity": qty}]}, owner=user)
        for qty in (2, 1)
    ]
    ids = [job.pk for job in jobs]
    killed: set[tuple] = set()

    def kill_and_reap() -> None:
        # Every attempt dies while waiting for the payment provider.
        for job in Job.objects.filter(pk__in=ids, status=JobStatus.PROCESSING, progress_percentage=40):
            if (job.pk, job.attempts) not in killed:
                clusters.kill_worker(job, cluster)
                killed.add((job.pk, job.attempts))
        reap_task()

    settle(ids, timeout=90, reap=kill_and_reap, interval=0.1, logs=clusters.logs)

    assert status_counts(ids) == {JobStatus.FAILED: 2}
    assert len(killed) == 6
    for job in Job.objects.filter(pk__in=ids):
        assert job.error["code"] == "worker_lost", job.error
        assert job.attempts == job.max_attempts == 3
        assert job.result is None
    # The abandon hook put the reserved stock back; nothing was paid.
    assert not Order.objects.filter(status=OrderStatus.PAID).exists()
    assert set(Order.objects.values_list("status", flat=True)) <= {OrderStatus.RELEASED}
    assert Product.objects.get(pk=product.pk).stock == 5
    assert not PaymentCharge.objects.filter(refunded=False).exists()
