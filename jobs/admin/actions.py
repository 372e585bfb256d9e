"""Staff actions on jobs: retry, cancel, purge. Each reports what changed and what was skipped."""

from __future__ import annotations

from typing import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import format_lazy
from django.utils.translation import ngettext

from jobs.maintenance import BulkResult, jobs_bulk_cancel, jobs_bulk_purge, jobs_bulk_retry
from jobs.models import Job, JobQuerySet, JobStatus
from jobs.timeline import actor_for_user

WHY_SKIPPED = {
    "retry": "only failed or cancelled jobs can be retried",
    "cancel": "finished jobs cannot be cancelled",
    "purge": "pending and processing jobs are never purged",
}


def _log(request: HttpRequest, flag: int, message: str) -> Callable[[list], None]:
    def log_batch(ids: list) -> None:
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=Job.objects.filter(pk__in=ids),
            action_flag=flag,
            change_message=message,
        )

    return log_batch


def report(modeladmin: admin.ModelAdmin, request: HttpRequest, verb: str, what: str, result: BulkResult) -> None:
    """Tell the user how many jobs changed, and how many were skipped and why."""
    text = ngettext("%(verb)s %(count)d job.", "%(verb)s %(count)d jobs.", result.changed) % {
        "verb": verb,
        "count": result.changed,
    }
    level = messages.SUCCESS if result.changed else messages.WARNING
    if result.skipped_total:
        by_status = ", ".join(f"{count} {status}" for status, count in sorted(result.skipped.items()))
        text += " " + ngettext(
            "Skipped %(count)d (%(detail)s): %(why)s.",
            "Skipped %(count)d (%(detail)s): %(why)s.",
            result.skipped_total,
        ) % {"count": result.skipped_total, "detail": by_status, "why": WHY_SKIPPED[what]}
    modeladmin.message_user(request, text, level)


@admin.action(description="Retry selected failed or cancelled jobs", permissions=["retry"])
def retry_jobs(modeladmin, request: HttpRequest, queryset: JobQuerySet) -> None:
    actor = actor_for_user(request.user, via="staff")
    result = jobs_bulk_retry(queryset, actor=actor, on_batch=_log(request, CHANGE, "Retried"))
    report(modeladmin, request, "Retried", "retry", result)


@admin.action(description="Cancel selected jobs", permissions=["cancel"])
def cancel_jobs(modeladmin, request: HttpRequest, queryset: JobQuerySet) -> None:
    actor = actor_for_user(request.user, via="staff")
    result = jobs_bulk_cancel(queryset, actor=actor, on_batch=_log(request, CHANGE, "Cancelled"))
    report(modeladmin, request, "Cancelled", "cancel", result)


@admin.action(description="Purge selected finished jobs", permissions=["delete"])
def purge_jobs(modeladmin, request: HttpRequest, queryset: JobQuerySet) -> TemplateResponse | None:
    if request.POST.get("post") == "yes":
        result = jobs_bulk_purge(queryset, on_batch=_log(request, DELETION, "Purged"))
        report(modeladmin, request, "Purged", "purge", result)
        return None
    finished = queryset.filter(status__in=JobStatus.terminal()).count()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Purge jobs?",
        "opts": modeladmin.model._meta,
        "finished_count": finished,
        "active_count": queryset.count() - finished,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": "purge_jobs",
        "subtitle": format_lazy("{} selected", queryset.model._meta.verbose_name_plural),
    }
    return TemplateResponse(request, "admin/jobs/job/purge_confirmation.html", context)
