"""Tombstones for staff: which removed jobs their owners are still told about (read-only)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import Tombstone


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin):
    """Removed jobs within the retention: their owners get ``410 Gone`` with this when and why."""

    list_display = ["job_id", "kind", "owner", "reason", "removed_at"]
    list_filter = ["reason"]
    list_select_related = ["owner"]
    search_fields = ["job_id"]  # see get_search_results: a full job id, or an owner's username
    search_help_text = "A removed job's full id, or its owner's username."
    show_full_result_count = False
    ordering = ["-removed_at"]

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        """A full job id finds its tombstone by primary key; anything else is an owner's username."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return queryset.filter(owner__username=term), False

    # Written only when a job is removed, deleted only by the TTL schedule.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
