"""The purchases.execute handler, run through job_submit and run_job."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_cancel, job_submit
from purchases import operations as purchase_handlers
from purchases import payments
from purchases.models import Order, OrderStatus, PaymentCharge, Product

pytestmark = pytest.mark.django_db


def submit_purchase(owner, goods, **extra) -> Job:
    payload = {"goods": [{"product_id": p.pk, "quantity": q} for p, q in goods], **extra}
    return job_submit(kind="purchases.execute", payload=payload, owner=owner).job


def stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def run_again_now(job: Job) -> str:
    """Let a job waiting for its backoff run at once, as its scheduled retry would."""
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now())
    return run_job(str(job.pk))


def test_a_purchase_makes_one_paid_order_at_frozen_prices(user, make_product):
    pen = make_product(price=Decimal("2.50"), stock=10)
    ink = make_product(price=Decimal("4.00"), stock=3)
    job = submit_purchase(user, [(pen, 4), (ink, 3)])

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    order = Order.objects.get()
    assert (order.job_id, order.owner, order.status) == (job.pk, user, OrderStatus.PAID)
    assert order.total == Decimal("22.00")
    charge = PaymentCharge.objects.get()
    assert (charge.idempotency_key, charge.amount) == (f"{job.pk}:1", Decimal("22.00"))
    assert order.payment_reference == charge.reference
    assert (stock(pen), stock(ink)) == (6, 0)

    Product.objects.filter(pk=pen.pk).update(price=Decimal("99.00"))
    assert [line.unit_price for line in order.lines.order_by("product_id")] == [
        Decimal("2.50"),
        Decimal("4.00"),
    ]

    result = Job.objects.get(pk=job.pk).result
    assert set(result) == {"order_id", "total", "currency", "lines"}
    assert (result["order_id"], result["total"], result["currency"]) == (order.pk, "22.00", "EUR")
    assert sorted((line["product_id"], line["quantity"], line["unit_price"], line["line_total"])
                  for line in result["lines"]) == sorted(
        [(pen.pk, 4, "2.50", "10.00"), (ink.pk, 3, "4.00", "12.00")]
    )


def test_insufficient_stock_fails_and_touches_nothing(user, make_product, fake_queue):
    plenty = make_product(stock=10)
    scarce = make_product(stock=1)
    job = submit_purchase(user, [(plenty, 2), (scarce, 2)])

    assert run_job(str(job.pk)) == JobStatus.FAILED

    stored = Job.objects.get(pk=job.pk)
    assert stored.error["code"] == "insufficient_stock"
    assert stored.attempts == 1
    assert (stock(plenty), stock(scarce)) == (10, 1)
    assert not Order.objects.exists()
    assert not PaymentCharge.objects.exists()
    assert fake_queue.scheduled == []


def test_a_declined_payment_fails_and_puts_the_stock_back(user, make_product):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)], payment_token=payments.DECLINE_TOKEN)

    assert run_job(str(job.pk)) == JobStatus.FAILED

    stored = Job.objects.get(pk=job.pk)
    assert stored.error["code"] == "payment_declined"
    assert stock(product) == 5
    order = Order.objects.get(job_id=job.pk)
    assert (order.status, order.failure_code) == (OrderStatus.RELEASED, "payment_declined")
    assert not PaymentCharge.objects.exists()


def test_running_a_completed_purchase_again_charges_once(user, make_product):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    run_job(str(job.pk))
    first_result = Job.objects.get(pk=job.pk).result

    # As if the worker died after the handler returned and the job went back.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING, attempts=1)
    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    stored = Job.objects.get(pk=job.pk)
    assert stored.attempts == 2
    assert stored.result == first_result
    assert Order.objects.count() == 1
    assert PaymentCharge.objects.count() == 1
    assert stock(product) == 3


def test_running_a_declined_purchase_again_declines_again(user, make_product):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)], payment_token=payments.DECLINE_TOKEN)
    run_job(str(job.pk))

    Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING, attempts=1)
    assert run_job(str(job.pk)) == JobStatus.FAILED

    assert Job.objects.get(pk=job.pk).error["code"] == "payment_declined"
    assert Order.objects.count() == 1
    assert stock(product) == 5
    assert not PaymentCharge.objects.exists()


def test_a_transient_payment_error_keeps_the_stock_and_retries(
    user, make_product, monkeypatch, fake_queue
):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    real_charge = payments.charge
    monkeypatch.setattr(payments, "charge", _provider_down)

    assert run_job(str(job.pk)) == "retrying"

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.error) == (JobStatus.PENDING, None)
    assert "ConnectionError: provider unreachable" in stored.traceback
    assert stock(product) == 3
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.RESERVED
    assert len(fake_queue.scheduled) == 1

    monkeypatch.setattr(payments, "charge", real_charge)
    assert run_again_now(job) == JobStatus.COMPLETED
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.PAID
    assert Order.objects.count() == 1
    assert stock(product) == 3


def _provider_down(**kwargs):
    raise ConnectionError("provider unreachable")


def test_the_last_transient_error_releases_the_stock(user, make_product, monkeypatch, fake_queue):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    monkeypatch.setattr(payments, "charge", _provider_down)

    outcomes = [run_again_now(job) for _ in range(job.max_attempts)]

    assert outcomes == ["retrying", "retrying", JobStatus.FAILED]
    stored = Job.objects.get(pk=job.pk)
    assert stored.error["code"] == "internal_error"
    assert stock(product) == 5
    order = Order.objects.get(job_id=job.pk)
    assert (order.status, order.failure_code) == (OrderStatus.RELEASED, JobStatus.FAILED)
    assert len(fake_queue.scheduled) == 2


def test_a_charge_whose_answer_was_lost_is_refunded_when_the_job_gives_up(
    user, make_product, monkeypatch, fake_queue
):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    real_charge = payments.charge

    def charge_then_lose_the_answer(**kwargs):
        real_charge(**kwargs)
        raise ConnectionError("read timed out")

    monkeypatch.setattr(payments, "charge", charge_then_lose_the_answer)
    outcomes = [run_again_now(job) for _ in range(job.max_attempts)]

    assert outcomes[-1] == JobStatus.FAILED
    assert PaymentCharge.objects.get().refunded is True
    assert stock(product) == 5


def test_a_cancel_before_the_charge_releases_the_stock(user, make_product, monkeypatch):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    real_reserve = purchase_handlers.order_reserve

    def reserve_then_get_cancelled(**kwargs):
        order = real_reserve(**kwargs)
        job_cancel(job=Job.objects.get(pk=kwargs["job_id"]))
        return order

    monkeypatch.setattr(purchase_handlers, "order_reserve", reserve_then_get_cancelled)

    assert run_job(str(job.pk)) == JobStatus.CANCELLED

    stored = Job.objects.get(pk=job.pk)
    assert stored.error["code"] == "cancelled"
    assert stock(product) == 5
    order = Order.objects.get(job_id=job.pk)
    assert (order.status, order.failure_code) == (OrderStatus.RELEASED, "cancelled")
    assert not PaymentCharge.objects.exists()


def test_a_cancel_after_the_charge_is_too_late(user, make_product, monkeypatch):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    real_charge = payments.charge

    def charge_then_get_cancelled(**kwargs):
        charge = real_charge(**kwargs)
        job_cancel(job=Job.objects.get(pk=kwargs["idempotency_key"].split(":")[0]))
        return charge

    monkeypatch.setattr(payments, "charge", charge_then_get_cancelled)

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    assert Order.objects.get(job_id=job.pk).status == OrderStatus.PAID
    assert PaymentCharge.objects.count() == 1
    assert stock(product) == 3


def test_cancelling_a_purchase_waiting_for_its_retry_releases_the_stock(
    user, make_product, monkeypatch
):
    """A cancel between attempts must not leave the stock held by a dead order."""
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)])
    monkeypatch.setattr(payments, "charge", _provider_down)
    assert run_job(str(job.pk)) == "retrying"

    job_cancel(job=Job.objects.get(pk=job.pk))

    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert stock(product) == 5
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.RELEASED


def test_a_retried_purchase_reserves_again_and_pays_with_a_new_key(user, make_product):
    product = make_product(stock=5)
    job = submit_purchase(user, [(product, 2)], payment_token="tok_decline")
    assert run_job(str(job.pk)) == JobStatus.FAILED
    assert stock(product) == 5

    from jobs.maintenance import jobs_bulk_retry

    Job.objects.filter(pk=job.pk).update(payload={**job.payload, "payment_token": "tok_visa"})
    assert jobs_bulk_retry(Job.objects.filter(pk=job.pk), actor="test").changed == 1
    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    order = Order.objects.get(job_id=job.pk)
    assert (order.status, order.payment_attempt) == (OrderStatus.PAID, 2)
    assert PaymentCharge.objects.get().idempotency_key == f"{job.pk}:2"
    assert stock(product) == 3
