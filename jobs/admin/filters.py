"""Changelist filters that never scan the job table to build their choices."""

from __future__ import annotations

from django.contrib import admin

from jobs.registry import all_kinds
from jobs.selectors import stuck_condition


class KindFilter(admin.SimpleListFilter):
    """Kinds come from the registry, not from SELECT DISTINCT over every job."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind.name, kind.name) for kind in all_kinds()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Processing past its timeout")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stuck_condition())
        return queryset
