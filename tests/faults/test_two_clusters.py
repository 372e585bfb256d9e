"""Two worker clusters against one database: every job once, stock never oversold."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from jobs import submit
from jobs.models import Job, JobStatus
from purchases.models import Order, OrderStatus, PaymentCharge, Product
from tests.faults.support import executions, runs, send_duplicate, settle, status_counts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]

QUICK_JOBS = 500
DUPLICATED = 100


def test_two_clusters_execute_every_one_of_500_jobs_exactly_once(clusters, user):
    ids = [submit("faults.sleep", {"seconds": 0, "n": n}, owner=user).pk for n in range(QUICK_JOBS)]
    # At-least-once delivery: a second message for some jobs, which the
    # clusters may pick up at the same moment as the first.
    for pk in ids[:DUPLICATED]:
        send_duplicate(pk, "faults.sleep")
    started = time.monotonic()
    one = clusters.start("one", Q_WORKERS="2", ready=False)
    two = clusters.start("two", Q_WORKERS="2", ready=False)

    settle(ids, timeout=90, logs=clusters.logs)
    elapsed = time.monotonic() - started

    assert status_counts(ids) == {JobStatus.COMPLETED: QUICK_JOBS}
    assert sorted(executions()) == sorted(str(pk) for pk in ids)
    assert len(runs()) == QUICK_JOBS
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    # Both clusters did part of the work.
    groups = Counter(
        clusters.group_of(int(worker.rsplit(":", 1)[1]))
        for worker in Job.objects.filter(pk__in=ids).values_list("worker", flat=True)
    )
    assert groups[one] > 0 and groups[two] > 0, groups
    print(f"{QUICK_JOBS} jobs on two clusters in {elapsed:.1f}s: {groups[one]} + {groups[two]}")


def test_fifty_purchases_race_for_ten_in_stock_across_two_clusters(clusters, user, make_product):
    product = make_product(stock=10, price=Decimal("5.00"))
    goods = [{"product_id": product.pk, "quantity": 1}]
    ids = [submit("purchases.execute", {"goods": goods}, owner=user).pk for _ in range(50)]
    clusters.start("one", Q_WORKERS="2", ready=False)
    clusters.start("two", Q_WORKERS="2", ready=False)

    settle(ids, timeout=60, logs=clusters.logs)

    assert status_counts(ids) == {JobStatus.COMPLETED: 10, JobStatus.FAILED: 40}
    codes = Counter(
        (job.error or {}).get("code") for job in Job.objects.filter(pk__in=ids, status=JobStatus.FAILED)
    )
    assert codes == {"insufficient_stock": 40}
    assert Order.objects.count() == 10
    assert Order.objects.filter(status=OrderStatus.PAID).count() == 10
    assert set(Order.objects.values_list("job_id", flat=True)) == set(
        Job.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).values_list("pk", flat=True)
    )
    assert Product.objects.get(pk=product.pk).stock == 0
    assert PaymentCharge.objects.count() == 10
