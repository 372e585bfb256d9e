"""The live jobs dashboard in the admin: a page, and the JSON it refreshes itself from.

Mounted at ``/admin/jobs/dashboard/`` by the project's URLconf, behind the
admin's login (``admin_view``) and the ``jobs.view_job`` permission. The
figures come from ``jobs.dashboard``; this module only adds the admin links
each figure leads to (the job changelist filtered to it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from jobs.dashboard import HOUR, dashboard_snapshot
from jobs.models import JobStatus
from jobs.rollups import minute_floor

PERMISSION = "jobs.view_job"
# Seconds between the page's refreshes.
REFRESH_SECONDS = 5


def changelist_url(**params: str) -> str:
    """Return the job changelist's URL filtered by ``params`` (its own query parameters)."""
    url = reverse("admin:jobs_job_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _since(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def add_links(snapshot: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Add to each figure of ``snapshot`` the admin URL that lists its jobs."""
    hour = _since(minute_floor(now) - HOUR + timedelta(minutes=1))
    pending, processing = JobStatus.PENDING.value, JobStatus.PROCESSING.value
    snapshot["links"] = {
        "changelist": changelist_url(),
        "pending": changelist_url(status__exact=pending),
        "running": changelist_url(status__exact=processing),
        **{
            f"{outcome}_hour": changelist_url(status__exact=outcome, finished_at__gte=hour)
            for outcome in JobStatus.terminal()
        },
    }
    for row in snapshot["kinds"]:
        kind = row["kind"]
        row["links"] = {
            "kind": changelist_url(kind=kind),
            "pending": changelist_url(kind=kind, status__exact=pending),
            "running": changelist_url(kind=kind, status__exact=processing),
            "finished_hour": changelist_url(kind=kind, finished_at__gte=hour),
            "failed_hour": changelist_url(kind=kind, status__exact=JobStatus.FAILED.value, finished_at__gte=hour),
        }
    for failure in snapshot["failures"]:
        failure["url"] = reverse("admin:jobs_job_change", args=[failure["id"]])
        failure["code_url"] = changelist_url(status__exact=JobStatus.FAILED.value, error__code=failure["code"])
        failure["kind_url"] = changelist_url(kind=failure["kind"], status__exact=JobStatus.FAILED.value)
    for cluster in snapshot["clusters"]:
        for worker in cluster["workers"]:
            worker["url"] = changelist_url(worker=f"{cluster['host']}:{worker['pid']}")
            for job in worker["jobs"]:
                job["url"] = reverse("admin:jobs_job_change", args=[job["id"]])
    return snapshot


def _snapshot(request: HttpRequest) -> dict[str, Any]:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    now = timezone.now()
    return add_links(dashboard_snapshot(now=now), now)


def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Show the dashboard; its script refreshes the figures from ``dashboard_data``."""
    snapshot = _snapshot(request)
    context = {
        **admin.site.each_context(request),
        "title": "Jobs dashboard",
        "snapshot": snapshot,
        "data_url": reverse("jobs_dashboard_data"),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return TemplateResponse(request, "admin/jobs/dashboard.html", context)


def dashboard_data(request: HttpRequest) -> JsonResponse:
    """Return the dashboard's figures as JSON (the page fetches it every few seconds; never cached)."""
    return JsonResponse(_snapshot(request))


urlpatterns = [
    path("", admin.site.admin_view(dashboard_page), name="jobs_dashboard"),
    path("data/", admin.site.admin_view(dashboard_data), name="jobs_dashboard_data"),
]
