"""Input and output shapes of the purchases API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from purchases.conf import purchases_setting
from purchases.models import Order, OrderLine, Product


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON number, not a string or a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string that must arrive as a JSON string: DRF's CharField turns ``5`` into ``"5"``."""

    default_error_messages = {"invalid": "Send a string, e.g. \"tok_visa\"."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# Larger ids cannot exist, and would overflow the database's integer types.
MAX_ID = 2**31 - 1


class RejectUnknownFieldsMixin:
    """Refuse fields the serializer does not know, instead of ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class PurchaseLineSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    product_id = StrictIntegerField(min_value=1, max_value=MAX_ID)
    quantity = StrictIntegerField(min_value=1)

    def validate_quantity(self, value: int) -> int:
        limit = purchases_setting("MAX_QUANTITY")
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value


class PurchaseSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """``{"goods": [{"product_id": 1, "quantity": 2}], "payment_token": "tok_visa"}``.

    ``payment_token`` is optional; ``"tok_decline"`` simulates a declined card.
    """

    goods = PurchaseLineSerializer(many=True, allow_empty=False)
    payment_token = StrictCharField(required=False, default="tok_visa", max_length=100)

    def validate_goods(self, goods: list[dict[str, int]]) -> list[dict[str, int]]:
        if len(goods) > purchases_setting("MAX_LINES"):
            raise serializers.ValidationError(
                f"Send at most {purchases_setting('MAX_LINES')} lines."
            )
        ids = [line["product_id"] for line in goods]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError(
                "Each product may appear once; put the whole quantity on one line."
            )
        known = set(Product.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [str(pk) for pk in ids if pk not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown product id(s): {', '.join(unknown)}.")
        return goods


# Reports cover days on which orders can exist. The bound also keeps the
# default start (date_to - 29 days) and the database's time zone conversion
# of the range's ends clear of year 1, where date arithmetic overflows.
REPORT_MIN_DATE = date(1900, 1, 1)
REPORT_MAX_DATE = date(9999, 12, 1)
REPORT_DATE_RANGE = f"Send a date from {REPORT_MIN_DATE.isoformat()} to {REPORT_MAX_DATE.isoformat()}."


class SalesReportSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """``{"date_from": "YYYY-MM-DD", "date_to": "YYYY-MM-DD"}``, both optional.

    Without dates: the last 30 days, today included. Dates outside
    ``REPORT_MIN_DATE``..``REPORT_MAX_DATE`` are refused.
    """

    date_from = serializers.DateField(required=False, input_formats=["iso-8601"])
    date_to = serializers.DateField(required=False, input_formats=["iso-8601"])

    def _in_range(self, value: date) -> date:
        if not REPORT_MIN_DATE <= value <= REPORT_MAX_DATE:
            raise serializers.ValidationError(REPORT_DATE_RANGE)
        return value

    def validate_date_from(self, value: date) -> date:
        return self._in_range(value)

    def validate_date_to(self, value: date) -> date:
        return self._in_range(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        date_to = attrs.get("date_to") or timezone.localdate()
        date_from = attrs.get("date_from") or max(date_to - timedelta(days=29), REPORT_MIN_DATE)
        if date_from > date_to:
            raise serializers.ValidationError({"date_from": ["Must not be after the end date."]})
        return {"date_from": date_from, "date_to": date_to}


class SalesReportLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class SalesReportResultSerializer(serializers.Serializer):
    """The report (documentation of the answer)."""

    date_from = serializers.DateField()
    date_to = serializers.DateField()
    currency = serializers.CharField()
    orders = serializers.IntegerField(help_text="Paid orders in the range.")
    products = SalesReportLineSerializer(many=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock"]


class OrderLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        model = OrderLine
        fields = ["product_id", "sku", "name", "quantity", "unit_price", "line_total"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True)
    job_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = Order
        fields = ["id", "status", "total", "currency", "payment_reference", "lines", "job_id", "created_at"]
