"""OpenAPI pieces of the purchases API (documentation only; see jobs/api/public.py).

The purchase kinds' results, error codes and example job documents are
documented here, in the app, and handed to the engine with ``document_kind``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

from jobs.api.public import document_kind, job_example
from purchases.conf import purchases_setting
from purchases.serializers import SalesReportResultSerializer

PURCHASE_KIND = "purchases.execute"
REPORT_KIND = "purchases.sales_report"


class PurchaseResultLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class PurchaseResultSerializer(serializers.Serializer):
    """What a completed purchase carries in the job's `result`: the order."""

    order_id = serializers.IntegerField(help_text="The order: `GET /api/orders/{order_id}/`.")
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    lines = PurchaseResultLineSerializer(many=True)


# Job documents of a purchase as `GET /api/jobs/{id}/` shows them.
PURCHASE_JOB_EXAMPLES = (
    OpenApiExample(
        "Completed purchase",
        value=job_example(
            "completed",
            kind=PURCHASE_KIND,
            progress={"percentage": 100, "message": "Order confirmed"},
            result={
                "order_id": 1,
                "total": "178.00",
                "currency": "EUR",
                "lines": [
                    {
                        "product_id": 1,
                        "sku": "KB-01",
                        "name": "Mechanical keyboard",
                        "quantity": 2,
                        "unit_price": "89.00",
                        "line_total": "178.00",
                    }
                ],
            },
            attempts=1,
            started_at="2025-01-01T12:00:01Z",
            finished_at="2025-01-01T12:00:03Z",
            expires_at="2025-01-08T12:00:03Z",
        ),
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Failed purchase",
        value=job_example(
            "failed",
            kind=PURCHASE_KIND,
            progress={"percentage": 10, "message": "Reserving stock"},
            error={
                "code": "insufficient_stock",
                "message": "Not enough stock (Mechanical keyboard: 1 left).",
            },
            attempts=1,
            started_at="2025-01-01T12:00:01Z",
            finished_at="2025-01-01T12:00:02Z",
            expires_at="2025-01-08T12:00:02Z",
        ),
        response_only=True,
        status_codes=["200"],
    ),
)

document_kind(
    PURCHASE_KIND,
    result=PurchaseResultSerializer,
    error_codes=("insufficient_stock", "product_unavailable", "payment_declined"),
    examples=PURCHASE_JOB_EXAMPLES,
)
document_kind(REPORT_KIND, result=SalesReportResultSerializer)


class PurchaseSerializerExtension(OpenApiSerializerExtension):
    """The purchase body, with the limits its validation enforces and no unknown fields."""

    target_class = "purchases.serializers.PurchaseSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["description"] = "What to buy, and optionally how to pay. Unknown fields are refused."
        schema["additionalProperties"] = False
        goods = schema["properties"]["goods"]
        goods["minItems"] = 1
        goods["maxItems"] = purchases_setting("MAX_LINES")
        goods["description"] = (
            f"One line per product (each product once), 1 to {purchases_setting('MAX_LINES')} lines."
        )
        schema["properties"]["payment_token"]["description"] = (
            "Optional, `tok_visa` by default; `tok_decline` simulates a declined card."
        )
        return schema


class PurchaseLineSerializerExtension(OpenApiSerializerExtension):
    target_class = "purchases.serializers.PurchaseLineSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        schema["properties"]["quantity"]["maximum"] = purchases_setting("MAX_QUANTITY")
        schema["properties"]["product_id"]["description"] = "A product id from `GET /api/products/`."
        return schema


PURCHASE_EXAMPLES = [
    OpenApiExample(
        "Two keyboards",
        value={"goods": [{"product_id": 1, "quantity": 2}], "payment_token": "tok_visa"},
        request_only=True,
    ),
]
