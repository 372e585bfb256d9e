"""The sales report: a user's own totals per product over a range of days."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, ExpressionWrapper, F, Sum

from jobs import current_job
from purchases.conf import purchases_setting
from purchases.models import Order, OrderLine, OrderStatus

CENT = Decimal("0.01")


def _money(value: Decimal | None) -> str:
    return str((value or Decimal("0")).quantize(CENT))


def sales_report(*, owner: Any, date_from: date, date_to: date) -> dict[str, Any]:
    """Sum ``owner``'s paid orders from ``date_from`` to ``date_to`` (inclusive) per product.

    Publishes progress when run as a job; ``PURCHASES["REPORT_DELAY"]``
    seconds of artificial work make that progress visible in the demo.
    """
    job = current_job()
    delay = float(purchases_setting("REPORT_DELAY"))
    job.progress(10, "Reading orders")
    orders = Order.objects.filter(
        owner=owner,
        status=OrderStatus.PAID,
        created_at__date__gte=date_from,
        created_at__date__lte=date_to,
    )
    order_count = orders.count()
    time.sleep(delay / 2)
    job.progress(50, f"Summing {order_count} orders")
    rows = (
        OrderLine.objects.filter(order__in=orders)
        .values("product_id", "product__sku", "product__name")
        .annotate(
            units=Sum("quantity"),
            amount=Sum(
                ExpressionWrapper(
                    F("quantity") * F("unit_price"),
                    output_field=DecimalField(max_digits=14, decimal_places=2),
                )
            ),
        )
        .order_by("product__name", "product_id")
    )
    products = [
        {
            "product_id": row["product_id"],
            "sku": row["product__sku"],
            "name": row["product__name"],
            "quantity": row["units"],
            "total": _money(row["amount"]),
        }
        for row in rows
    ]
    time.sleep(delay / 2)
    job.progress(100, "Report ready")
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "currency": purchases_setting("CURRENCY"),
        "orders": order_count,
        "products": products,
        "total": _money(sum((Decimal(p["total"]) for p in products), Decimal("0"))),
    }
