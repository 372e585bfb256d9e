"""Twenty workers racing for ten items: no oversell, no lost or doubled order."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_submit
from purchases.models import Order, OrderStatus, PaymentCharge, Product

STOCK = 10
BUYERS = 20


# Committed rows: twenty threads, each on a connection of its own, race for them.
@pytest.mark.django_db(transaction=True)
def test_concurrent_purchases_never_oversell(user, make_product):
    product = make_product(stock=STOCK)
    job_ids = [
        str(
            job_submit(
                kind="purchases.execute",
                payload={"goods": [{"product_id": product.pk, "quantity": 1}]},
                owner=user,
            ).job.pk
        )
        for _ in range(BUYERS)
    ]
    barrier = threading.Barrier(BUYERS, timeout=60)
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(job_id: str) -> None:
        try:
            barrier.wait()
            outcomes[job_id] = run_job(job_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sorted(outcomes.values()) == sorted(
        [JobStatus.COMPLETED] * STOCK + [JobStatus.FAILED] * (BUYERS - STOCK)
    )

    assert Product.objects.get(pk=product.pk).stock == 0
    assert Order.objects.count() == STOCK
    assert Order.objects.filter(status=OrderStatus.PAID).count() == STOCK
    assert PaymentCharge.objects.count() == STOCK

    jobs = Job.objects.filter(pk__in=job_ids)
    assert jobs.filter(status=JobStatus.COMPLETED).count() == STOCK
    failed = list(jobs.filter(status=JobStatus.FAILED))
    assert len(failed) == BUYERS - STOCK
    assert {job.error["code"] for job in failed} == {"insufficient_stock"}
    assert all(job.attempts == 1 for job in jobs)
    assert set(Order.objects.values_list("job_id", flat=True)) == {
        job.pk for job in jobs if job.status == JobStatus.COMPLETED
    }
