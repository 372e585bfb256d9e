"""Order services: reserve stock, confirm after payment, release on failure.

Each runs in one short transaction; none is open across the payment call.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from jobs import JobError
from purchases.conf import purchases_setting
from purchases.models import Order, OrderLine, OrderStatus, PaymentCharge, Product


def order_for_job(*, job_id: uuid.UUID) -> Order | None:
    """Return the order a job already made, if any (re-runs find it here)."""
    return Order.objects.filter(job_id=job_id).first()


def order_reserve(*, job_id: uuid.UUID, owner_id: Any, goods: list[dict[str, int]]) -> Order:
    """Take the stock for ``goods`` and create a reserved order for the job.

    Raises ``JobError("insufficient_stock")`` with stock untouched when short.
    """
    wanted = {line["product_id"]: line["quantity"] for line in goods}
    try:
        with transaction.atomic():
            products = _stock_take(wanted)
            order = Order.objects.create(
                owner_id=owner_id,
                job_id=job_id,
                currency=purchases_setting("CURRENCY"),
                total=sum((p.price * wanted[p.pk] for p in products), Decimal("0")),
            )
            OrderLine.objects.bulk_create(
                OrderLine(order=order, product=p, quantity=wanted[p.pk], unit_price=p.price)
                for p in products
            )
    except IntegrityError:
        # A concurrent run of the same job made the order first.
        existing = order_for_job(job_id=job_id)
        if existing is None:
            raise
        return existing
    return order


def order_rereserve(*, order: Order) -> Order:
    """Take the stock again for a released order (its job was retried).

    Raises ``JobError("insufficient_stock")`` with nothing changed when short.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.RELEASED:
            return locked
        _stock_take({line.product_id: line.quantity for line in locked.lines.all()})
        locked.status = OrderStatus.RESERVED
        locked.failure_code = ""
        locked.payment_attempt += 1
        locked.save(update_fields=["status", "failure_code", "payment_attempt", "updated_at"])
    return locked


def _stock_take(wanted: dict[int, int]) -> list[Product]:
    """Take ``wanted`` (quantity by product id) from stock; return the products, locked.

    Call inside a transaction. Raises ``JobError`` ("product_unavailable" or
    "insufficient_stock") before any stock is taken.
    """
    # Lock in primary-key order so concurrent purchases of the same
    # products queue up instead of deadlocking.
    products = list(Product.objects.select_for_update().filter(pk__in=wanted).order_by("pk"))
    if len(products) != len(wanted):
        raise JobError(
            "product_unavailable",
            "A product in this purchase no longer exists. Reload the products and retry.",
        )
    short = [p for p in products if p.stock < wanted[p.pk]]
    if short:
        detail = ", ".join(f"{p.name}: {p.stock} left" for p in short)
        raise JobError("insufficient_stock", f"Not enough stock ({detail}).")
    for product in products:
        Product.objects.filter(pk=product.pk).update(stock=F("stock") - wanted[product.pk])
    return products


def order_confirm(*, order: Order, charge: PaymentCharge) -> Order:
    """Mark a reserved order paid by ``charge``."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == OrderStatus.RESERVED:
            locked.status = OrderStatus.PAID
            locked.payment_reference = charge.reference
            locked.save(update_fields=["status", "payment_reference", "updated_at"])
    return locked


def order_release(*, order: Order, reason: str) -> Order:
    """Put a reserved order's stock back and mark it released; paid orders are left alone."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.RESERVED:
            return locked
        for line in locked.lines.all():
            Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)
        locked.status = OrderStatus.RELEASED
        locked.failure_code = reason[:64]
        locked.save(update_fields=["status", "failure_code", "updated_at"])
    return locked


def order_result(order: Order) -> dict[str, Any]:
    """Return the job result for a paid order."""
    lines = order.lines.select_related("product")
    return {
        "order_id": order.pk,
        "total": str(order.total),
        "currency": order.currency,
        "lines": [
            {
                "product_id": line.product_id,
                "sku": line.product.sku,
                "name": line.product.name,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "line_total": str(line.line_total),
            }
            for line in lines
        ],
    }
