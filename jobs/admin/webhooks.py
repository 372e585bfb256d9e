"""The webhook deliveries of one job, with every attempt, on the job's admin page (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from jobs.admin.timeline import JobEventInline
from jobs.admin.times import exact_time
from jobs.webhook_models import WebhookAttempt, WebhookDelivery


class WebhookDeliveryInline(admin.TabularInline):
    """Each destination told of the job's end: its stable id, outcome and attempts."""

    model = WebhookDelivery
    fields = ["webhook_id", "url", "status", "next_attempt_exact", "attempt_list"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "Webhook delivery"
    verbose_name_plural = "Webhook deliveries"
    template = JobEventInline.template  # one row per delivery, no caption above it

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("attempt_log")

    @admin.display(description="Webhook id")
    def webhook_id(self, delivery: WebhookDelivery) -> str:
        return delivery.webhook_id

    @admin.display(description="Next attempt")
    def next_attempt_exact(self, delivery: WebhookDelivery) -> str:
        return exact_time(delivery.next_attempt_at)

    @admin.display(description="Attempts")
    def attempt_list(self, delivery: WebhookDelivery) -> str:
        attempts = list(delivery.attempt_log.all())
        if not attempts:
            return "none yet"
        return format_html(
            "<ol class='webhook-attempts'>{}</ol>",
            format_html_join("", "<li>{}</li>", ((_describe(attempt),) for attempt in attempts)),
        )

    # Read-only and seen by whoever may see the job, as its timeline.
    has_add_permission = JobEventInline.has_add_permission
    has_change_permission = JobEventInline.has_change_permission

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Shown only for jobs that have deliveries.
        may_see = JobEventInline.has_view_permission(self, request, obj)
        return may_see and (obj is None or WebhookDelivery.objects.filter(job=obj).exists())


def _describe(attempt: WebhookAttempt) -> str:
    outcome = f"HTTP {attempt.status_code}" if attempt.status_code else "no answer"
    if attempt.error:
        outcome += f" ({attempt.error})"
    return f"#{attempt.number} {exact_time(attempt.at)}: {outcome}, {attempt.duration_ms} ms"
