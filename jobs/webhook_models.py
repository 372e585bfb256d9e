"""Completion webhooks: a user's endpoint and secret, and each delivery with its attempts.

Imported by one line at the bottom of ``jobs.models``; the rules live in
``jobs.webhooks``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookEndpoint(models.Model):
    """A user's webhook settings: the default destination and the signing secret.

    The secret is kept as it was shown (``whsec_...``) because signing needs
    it; only the API's create/rotate answer ever shows it, and the admin
    does not register this model.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoint"
    )
    url = models.CharField(
        max_length=2000, blank=True, help_text="Called when any of the user's jobs ends; empty: none."
    )
    secret = models.CharField(max_length=100, blank=True, editable=False)
    secret_created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhooks of {self.owner_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One job's end told to one destination: the same id and body on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="webhook_deliveries")
    url = models.CharField(max_length=2000)
    body = models.TextField(help_text="The signed JSON body, the same bytes on every attempt.")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next attempt is due; empty once delivered or failed."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # What the reaper looks for: pending deliveries whose attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_due_idx",
                condition=Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"webhook {self.webhook_id} ({self.status})"

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: stable across attempts, so receivers can drop duplicates."""
        return f"msg_{self.id.hex}"


class WebhookAttempt(models.Model):
    """One HTTP call of a delivery: when, how long, and what the receiver answered."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        outcome = self.status_code or self.error or "?"
        return f"attempt {self.number}: {outcome}"
