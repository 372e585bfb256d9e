"""Changelist filters that never scan the job table to build their choices."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpRequest

from jobs.registry import all_kinds
from jobs.selectors import stuck_condition


def has_nul_byte(request: HttpRequest) -> bool:
    """True if any query parameter's name or value holds a NUL byte."""
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class RefuseNulBytesMixin:
    """Refuse changelist parameters holding a NUL byte, as Django refuses an unusable lookup.

    No job kind, status or search term contains one, and PostgreSQL cannot
    even receive one in a text parameter: the query would fail with a 500.
    Django's changelist answers ``IncorrectLookupParameters`` with a
    redirect to ``?e=1`` (the list, with an error note).
    """

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        if has_nul_byte(request):
            raise IncorrectLookupParameters("A query parameter holds a NUL byte.")
        return super().get_changelist_instance(request)


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
    title = "timeout"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Processing past its timeout")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stuck_condition())
        return queryset
