"""The purchase operation, run by a worker as the job kind ``purchases.execute``.

Not a ``handlers`` module (those register ``@job`` kinds at start-up): the
kind is registered by ``@runs_as_job`` on ``PurchaseView.post``, and the
worker runs that action, which calls ``execute_purchase``.
"""

from __future__ import annotations

import uuid
from typing import Any

from jobs import Completed, JobContext, JobError
from purchases import payments
from purchases.models import OrderStatus
from purchases.services import (
    order_confirm,
    order_for_job,
    order_release,
    order_rereserve,
    order_reserve,
    order_result,
)

DECLINED = ("payment_declined", "The payment was declined. Use another payment method.")


def abandon_purchase(job_id: uuid.UUID, status: str) -> Completed | None:
    """Settle a purchase the engine is ending without its handler's answer.

    A paid order means the purchase happened (its worker was lost after
    confirming it, say): the job completes with the order. A reserved one
    did not finish: any charge is refunded, the stock goes back, and the job
    ends ``status``.
    """
    order = order_for_job(job_id=job_id)
    if order is None:
        return None
    if order.status == OrderStatus.PAID:
        return Completed(order_result(order))
    if order.status == OrderStatus.RESERVED:
        payments.refund(idempotency_key=order.payment_key)
        order_release(order=order, reason=status)
    return None


def execute_purchase(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Reserve stock, charge the buyer, confirm the order; safe to run again for one job.

    A cancel before the charge, or a last attempt that fails unexpectedly,
    ends in ``abandon_purchase``, called by the engine.
    """
    ctx.progress(5, "Checking the order")
    order = order_for_job(job_id=ctx.job_id)
    if order is None:
        ctx.progress(10, "Reserving stock")
        order = order_reserve(job_id=ctx.job_id, owner_id=ctx.owner_id, goods=payload["goods"])
    if order.status == OrderStatus.PAID:
        return order_result(order)
    if order.status == OrderStatus.RELEASED:
        # An earlier run gave the stock back (declined, cancelled, failed)
        # and the job was retried: reserve again and make a new payment.
        ctx.progress(10, "Reserving stock again")
        order = order_rereserve(order=order)

    ctx.progress(40, "Charging the payment")
    try:
        charge = payments.charge(
            amount=order.total,
            currency=order.currency,
            token=payload.get("payment_token", ""),
            idempotency_key=order.payment_key,
        )
    except payments.PaymentDeclined:
        order_release(order=order, reason=DECLINED[0])
        raise JobError(*DECLINED) from None

    # Money is taken: from here on the purchase completes, cancel or not.
    ctx.progress(80, "Confirming the order", cancellable=False)
    order = order_confirm(order=order, charge=charge)
    ctx.progress(100, "Order confirmed", cancellable=False)
    return order_result(order)
