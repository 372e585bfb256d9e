"""A randomised soak: purchases and reports under random cancels, declines and cluster SIGKILLs.

Afterwards every job has ended, nothing is left pending with a cancel
request, every paid order has one charge and a completed job, every failed
or cancelled purchase has no charge left and its stock back, and the stock
adds up. The seed is printed (and taken from ``SOAK_SEED``) so that a
failure can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from jobs import submit
from jobs.exceptions import InvalidJobState
from jobs.models import Job, JobStatus
from jobs.services import job_cancel
from purchases import payments
from purchases.models import Order, OrderLine, OrderStatus, PaymentCharge, Product
from tests.faults.support import TERMINAL, settle, status_counts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the soak kills clusters mid-write; it runs on PostgreSQL (DATABASE_URL), as in .ci/run",
    ),
]

PURCHASES = 240
REPORTS = 40
CHAOS_SECONDS = 40
STOCK = 10_000
LOST_AFTER = 8
# Every job ends within one lease plus a reaper run (django-q2's scheduler
# looks every ~30 s), or, when a killed cluster took it from the queue,
# LOST_AFTER plus a reaper run; then it may need a last attempt.
SETTLE_SECONDS = 100

# Short leases: these handlers never run past their timeout.
SOAK_ENV = {
    "JOBS_LEASE_GRACE": "2",
    "JOBS_LOST_AFTER": str(LOST_AFTER),
    "PURCHASES_PAYMENT_DELAY": "0.25",
    "PURCHASES_REPORT_DELAY": "0.05",
}


def _cancel(job: Job) -> int:
    try:
        job_cancel(job=job)
    except InvalidJobState:
        return 0  # it ended first
    return 1


def test_soak_random_cancels_declines_and_cluster_kills(clusters, reaper_schedule, user, make_product, settings):
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(10**9))
    print(f"soak seed: {seed} (replay with SOAK_SEED={seed})")
    rng = random.Random(seed)
    settings.JOBS = {**settings.JOBS, "LOST_AFTER": LOST_AFTER}

    products = [make_product(stock=STOCK, price=Decimal("3.00")) for _ in range(4)]
    cluster = clusters.start("soak-0", **SOAK_ENV)
    purchases: list[Job] = []
    reports: list[Job] = []
    kills = cancels = 0
    deadline = time.monotonic() + CHAOS_SECONDS
    next_kill = time.monotonic() + rng.uniform(4, 10)
    total = PURCHASES + REPORTS
    while time.monotonic() < deadline or len(purchases) + len(reports) < total:
        if len(purchases) + len(reports) < total:
            if rng.random() < REPORTS / total and len(reports) < REPORTS:
                reports.append(submit("purchases.sales_report", {}, owner=user))
            elif len(purchases) < PURCHASES:
                goods = [
                    {"product_id": p.pk, "quantity": rng.randint(1, 3)}
                    for p in rng.sample(products, rng.randint(1, 2))
                ]
                token = payments.DECLINE_TOKEN if rng.random() < 0.15 else "tok_ok"
                purchases.append(
                    submit("purchases.execute", {"goods": goods, "payment_token": token}, owner=user)
                )
        if purchases and rng.random() < 0.08:
            cancels += _cancel(rng.choice((purchases + reports)[-30:]))
        if time.monotonic() >= next_kill:
            # A cancel just before its worker dies: the case that once left jobs pending for ever.
            running = list(Job.objects.filter(pk__in=[j.pk for j in purchases], status=JobStatus.PROCESSING))
            for job in rng.sample(running, min(len(running), 2)):
                cancels += _cancel(job)
            # The whole cluster at once: pusher, workers, monitor, guard.
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=10)
            kills += 1
            cluster = clusters.start(f"soak-{kills}", **SOAK_ENV)
            next_kill = time.monotonic() + rng.uniform(5, 12)
        # Submissions spread over the chaos, so kills and cancels meet jobs in flight.
        time.sleep(rng.uniform(0.5, 1.5) * CHAOS_SECONDS / total)

    ids = [job.pk for job in purchases + reports]
    print(f"soak: {len(purchases)} purchases, {len(reports)} reports, {cancels} cancels, {kills} cluster kills")
    # No reap_task() here: the cluster's own reaper schedule must end them.
    started = time.monotonic()
    counts = settle(ids, timeout=SETTLE_SECONDS, logs=clusters.logs)
    print(f"soak: every job ended {time.monotonic() - started:.1f}s after the chaos: {counts}")

    assert not Job.objects.filter(status=JobStatus.PENDING, cancel_requested=True).exists()
    assert set(status_counts(ids)) <= TERMINAL

    jobs = {job.pk: job for job in Job.objects.filter(pk__in=[j.pk for j in purchases])}
    orders = {order.job_id: order for order in Order.objects.filter(job_id__in=jobs)}
    charges = Counter()
    kept = {}
    for charge in PaymentCharge.objects.all():
        job_id = charge.idempotency_key.split(":", 1)[0]
        if not charge.refunded:
            charges[job_id] += 1
            kept[job_id] = charge
    for pk, job in jobs.items():
        order = orders.get(pk)
        if job.status == JobStatus.COMPLETED:
            assert order is not None and order.status == OrderStatus.PAID, (pk, job.status, order)
            assert charges[str(pk)] == 1, (pk, charges[str(pk)])
            assert job.result["order_id"] == order.pk
            assert kept[str(pk)].reference == order.payment_reference
        else:
            assert charges[str(pk)] == 0, (pk, job.status, job.error)
            assert order is None or order.status == OrderStatus.RELEASED, (pk, job.status, order.status)
    for order in orders.values():
        if order.status == OrderStatus.PAID:
            assert jobs[order.job_id].status == JobStatus.COMPLETED, (order.pk, jobs[order.job_id].error)

    for product in products:
        sold = (
            OrderLine.objects.filter(product=product, order__status=OrderStatus.PAID).aggregate(n=Sum("quantity"))["n"]
            or 0
        )
        assert Product.objects.get(pk=product.pk).stock == STOCK - sold, product.pk
    print(f"soak: {Counter(job.status for job in jobs.values())}")
