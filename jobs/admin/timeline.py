"""The job page's timeline: its JobEvent rows, read-only, times to the second."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jobs.admin.times import exact_time
from jobs.models import JobEvent


class JobEventInline(admin.TabularInline):
    """The events of one job, oldest first, as a plain table (no form captions above each row)."""

    model = JobEvent
    fields = ["at_exact", "type", "attempt", "actor", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Timeline"
    # Django's tabular inline writes each row's str() ("Created at ...") above
    # the row, which repeats its first two columns: this template does not.
    template = "admin/jobs/job/timeline.html"

    @admin.display(description="At")
    def at_exact(self, event: JobEvent) -> str:
        return exact_time(event.at)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The timeline is part of the job: whoever may see the job sees it,
        # without a separate permission on the event model.
        return request.user.has_perm("jobs.view_job") or request.user.has_perm("jobs.change_job")
