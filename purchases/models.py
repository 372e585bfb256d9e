"""Products, orders and the simulated payment provider's ledger."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class OrderStatus(models.TextChoices):
    # Stock is held for the order while the payment is attempted.
    RESERVED = "reserved", "Reserved"
    PAID = "paid", "Paid"
    # The payment failed or the job was cancelled; stock went back.
    RELEASED = "released", "Released"


class Order(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders"
    )
    # One order per job: a re-run of the job finds this order instead of
    # making a second one. The order outlives the job's time to live.
    job = models.OneToOneField(
        "jobs.Job",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="order",
    )
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.RESERVED
    )
    failure_code = models.CharField(max_length=64, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3)
    payment_reference = models.CharField(max_length=64, blank=True)
    # Bumped each time a released order is reserved again (a retried job),
    # so the new payment attempt gets its own idempotency key.
    payment_attempt = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="order_owner_created_idx")]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"

    @property
    def payment_key(self) -> str:
        """The payment provider's idempotency key for this order's current attempt."""
        return f"{self.job_id}:{self.payment_attempt}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    # Frozen at purchase time: a later price change does not rewrite orders.
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="orderline_unique_product"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orderline_quantity_positive"),
        ]

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class PaymentCharge(models.Model):
    """The simulated payment provider's ledger: one charge per idempotency key."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=64, unique=True)
    refunded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency}"
