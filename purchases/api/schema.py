"""OpenAPI pieces of the purchases API (documentation only; see jobs/api/schema.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

from jobs.api.schema import register_result_schema
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


register_result_schema(PURCHASE_KIND, PurchaseResultSerializer)
register_result_schema(REPORT_KIND, SalesReportResultSerializer)


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
