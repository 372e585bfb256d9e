"""The job changelist and detail page for staff. Jobs are changed by actions, never edited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from jobs.admin.actions import cancel_jobs, purge_jobs, retry_jobs
from jobs.admin.filters import KindFilter, RefuseNulBytesMixin, StuckFilter
from jobs.admin.paginator import EstimatedCountPaginator
from jobs.admin.search import HELP_TEXT, search_jobs
from jobs.admin.timeline import JobEventInline
from jobs.admin.webhooks import WebhookDeliveryInline
from jobs.admin.times import JobTimesMixin, human_duration
from jobs.models import Job, JobStatus
from jobs.selectors import oldest_waiting_since

STATUS_COLOURS = {
    JobStatus.PENDING: "#6c757d",
    JobStatus.PROCESSING: "#0d6efd",
    JobStatus.COMPLETED: "#198754",
    JobStatus.FAILED: "#dc3545",
    JobStatus.CANCELLED: "#b36b00",
}


def pretty_json(value: Any) -> str:
    if value in (None, "", {}, []):
        return "-"
    return format_html('<pre class="jobs-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True))


@admin.register(Job)
class JobAdmin(JobTimesMixin, RefuseNulBytesMixin, admin.ModelAdmin):
    list_display = [
        "short_id", "kind_display", "owner", "status_badge", "progress_bar", "attempts_display",
        "created", "duration_display",
    ]  # fmt: skip
    list_display_links = ["short_id"]
    list_filter = ["status", KindFilter, StuckFilter]
    list_select_related = ["owner"]
    list_per_page = 50
    date_hierarchy = "created_at"
    search_fields = ["id"]  # see get_search_results: id or short id, owner username/email, idempotency key
    search_help_text = HELP_TEXT
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-created_at"]
    actions = [retry_jobs, cancel_jobs, purge_jobs]
    inlines = [JobEventInline, WebhookDeliveryInline]
    fieldsets = [
        (None, {"fields": ["full_id", "kind", "owner", "status", "progress", "attempts_display"]}),
        ("Input and outcome", {"fields": ["payload_pretty", "call_pretty", "options", "result_pretty", "result_status", "error_pretty", "traceback_pre"]}),
        ("Timing", {"fields": ["created_exact", "started", "finished", "duration_display", "age", "available", "expires"]}),
        ("Queue", {"fields": ["queue", "priority", "run_at", "idempotency_key", "cancel_requested", "worker", "task_links"]}),
    ]  # fmt: skip
    readonly_fields = [
        "full_id", "kind", "owner", "status", "progress", "attempts_display", "payload_pretty",
        "call_pretty", "options", "result_status", "result_pretty", "error_pretty", "traceback_pre", "created_exact", "started",
        "finished", "duration_display", "age", "available", "expires", "idempotency_key",
        "cancel_requested", "worker", "task_links", "queue", "priority", "run_at",
    ]  # fmt: skip

    # --- permissions: read-only, plus the actions' own permissions ------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        if obj is not None and not obj.is_terminal:
            return False
        return super().has_delete_permission(request, obj)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.retry_job")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.cancel_job")

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # Django's bulk delete ignores job status; purge_jobs is the safe one.
        actions.pop("delete_selected", None)
        return actions

    # --- changelist -----------------------------------------------------------

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        """Match a job id or short id, an owner's username or e-mail, or an idempotency key, using indexes."""
        return search_jobs(queryset, search_term), False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        return super().changelist_view(request, {**(extra_context or {}), "summary": self.summary()})

    @staticmethod
    def summary() -> dict[str, Any]:
        """Counts per status over the last 24 hours, and how long the oldest due pending job has waited."""
        now = timezone.now()
        counts = dict(
            # COUNT(*) with every status listed lets PostgreSQL answer from
            # the (status, created_at) index alone, without visiting rows.
            Job.objects.filter(created_at__gte=now - timedelta(hours=24), status__in=JobStatus.values)
            .order_by()
            .values_list("status")
            .annotate(n=Count("*"))
        )
        # A retried job waits from its retry, not from its creation.
        oldest = oldest_waiting_since(now)
        return {
            "counts": [(label, counts.get(value, 0), STATUS_COLOURS[value]) for value, label in JobStatus.choices],
            "oldest_pending_age": human_duration(now - oldest) if oldest else None,
        }

    @admin.display(description="ID", ordering="id")
    def short_id(self, job: Job) -> str:
        return str(job.pk)[:8]

    @admin.display(description="ID")
    def full_id(self, job: Job) -> str:
        return str(job.pk)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, job: Job) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 6px;border-radius:8px;white-space:nowrap">{}</span>',
            STATUS_COLOURS.get(job.status, "#333"),
            job.get_status_display(),
        )

    @admin.display(description="Progress")
    def progress_bar(self, job: Job) -> str:
        return format_html(
            '<div title="{}%  {}" style="width:60px;background:#e9ecef;border-radius:4px">'
            '<div style="width:{}%;background:{};height:10px;border-radius:4px"></div></div>',
            job.progress_percentage,
            job.progress_message,
            job.progress_percentage,
            STATUS_COLOURS.get(job.status, "#333"),
        )

    @admin.display(description="Kind", ordering="kind")
    def kind_display(self, job: Job) -> str:
        # A break opportunity after each dot keeps "app.long_action" in a narrow column.
        return format_html_join(mark_safe(".<wbr>"), "{}", ((part,) for part in job.kind.split(".")))

    @admin.display(description="Attempts")
    def attempts_display(self, job: Job) -> str:
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description="Duration")
    def duration_display(self, job: Job) -> str:
        seconds = job.duration
        return "-" if seconds is None else f"{seconds:.1f} s"

    # --- detail -----------------------------------------------------------------

    @admin.display(description="Progress")
    def progress(self, job: Job) -> str:
        return f"{job.progress_percentage}% {job.progress_message}".strip()

    @admin.display(description="Payload")
    def payload_pretty(self, job: Job) -> str:
        return pretty_json(job.payload)

    @admin.display(description="API request")
    def call_pretty(self, job: Job) -> str:
        # Set for a job asked of a job-capable endpoint (Prefer: respond-async).
        return pretty_json(job.call) if job.call else "-"

    @admin.display(description="Result")
    def result_pretty(self, job: Job) -> str:
        return pretty_json(job.result)

    @admin.display(description="Error")
    def error_pretty(self, job: Job) -> str:
        return pretty_json(job.error)

    @admin.display(description="Traceback of the last failure")
    def traceback_pre(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", job.traceback) if job.traceback else "-"

    @admin.display(description="Task records in django-q2")
    def task_links(self, job: Job) -> str:
        query = f"?q={job.pk}"
        return format_html(
            '<a href="{}">successful</a> · <a href="{}">failed</a> (task {})',
            reverse("admin:django_q_success_changelist") + query,
            reverse("admin:django_q_failure_changelist") + query,
            job.task_id or "-",
        )
