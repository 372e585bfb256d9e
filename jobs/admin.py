"""A read-only view of jobs for staff. Jobs are changed by services, never by hand."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "owner", "status", "progress_percentage", "attempts", "created_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["owner"]
    search_fields = ["=id", "=idempotency_key", "owner__username"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False
