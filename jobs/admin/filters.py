"""Changelist filters that never scan the job table to build their choices."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.models import JobStatus
from jobs.registry import all_kinds


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


def stuck_condition(now=None) -> Q:
    """Processing jobs that started longer ago than their kind's timeout allows."""
    now = now or timezone.now()
    kinds = all_kinds()
    late = Q()
    for kind in kinds:
        late |= Q(kind=kind.name, started_at__lt=now - timedelta(seconds=kind.timeout))
    default = timedelta(seconds=jobs_settings.DEFAULT_TIMEOUT)
    late |= ~Q(kind__in=[kind.name for kind in kinds]) & Q(started_at__lt=now - default)
    return Q(status=JobStatus.PROCESSING) & late


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Processing past its timeout")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stuck_condition())
        return queryset
