"""A date drill-down for big tables.

Django's ``date_hierarchy`` lists the years, months or days that have rows
with ``SELECT DISTINCT date_trunc(...)`` over every matching row: a full
sort of a million rows (~300 ms) on each changelist page. Here every
candidate period between the oldest and newest row is probed with one cheap
index lookup instead, all in a single statement of at most 31 probes.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.db.models import Max, Min, QuerySet, Subquery
from django.utils import timezone


def _period_start(moment: datetime, kind: str) -> datetime:
    local = timezone.localtime(moment)
    month = 1 if kind == "year" else local.month
    day = local.day if kind == "day" else 1
    return timezone.make_aware(datetime(local.year, month, day))


def _next_period(start: datetime, kind: str) -> datetime:
    naive = timezone.localtime(start).replace(tzinfo=None)
    if kind == "year":
        naive = naive.replace(year=naive.year + 1)
    elif kind == "month":
        naive = naive.replace(year=naive.year + naive.month // 12, month=naive.month % 12 + 1)
    else:
        naive = naive + timedelta(days=1)
    return timezone.make_aware(naive)


def periods_with_rows(queryset: QuerySet, field_name: str, kind: str) -> list[datetime]:
    """Return the starts of the years, months or days in which ``queryset`` has rows."""
    queryset = queryset.order_by()
    bounds = queryset.aggregate(first=Min(field_name), last=Max(field_name))
    if bounds["first"] is None:
        return []
    starts, start = [], _period_start(bounds["first"], kind)
    while start <= bounds["last"]:
        starts.append(start)
        start = _next_period(start, kind)
    # ORDER BY makes PostgreSQL walk the index; a bare EXISTS let it pick a
    # sequential scan that read hundreds of thousands of rows per probe.
    probes = {
        f"p{i}": Subquery(
            queryset.filter(
                **{f"{field_name}__gte": start, f"{field_name}__lt": _next_period(start, kind)}
            )
            .order_by(field_name)
            .values(field_name)[:1]
        )
        for i, start in enumerate(starts)
    }
    rows = list(queryset.model._base_manager.order_by().annotate(**probes).values(*probes)[:1])
    if not rows:
        return []
    found = rows[0]
    return [start for i, start in enumerate(starts) if found[f"p{i}"] is not None]


class _ProbingQuerySet:
    """What Django's date_hierarchy tag calls on ``cl.queryset``, answered by probes."""

    def __init__(self, queryset: QuerySet) -> None:
        self.queryset = queryset

    def aggregate(self, *args: Any, **kwargs: Any) -> dict:
        return self.queryset.aggregate(*args, **kwargs)

    def datetimes(self, field_name: str, kind: str, *args: Any, **kwargs: Any) -> list[datetime]:
        return periods_with_rows(self.queryset, field_name, kind)

    def dates(self, field_name: str, kind: str, *args: Any, **kwargs: Any) -> list:
        return [start.date() for start in periods_with_rows(self.queryset, field_name, kind)]


def cheap_date_hierarchy(cl: Any) -> dict:
    """Django's date_hierarchy context, computed without DISTINCT over the table."""
    probing = copy.copy(cl)
    probing.queryset = _ProbingQuerySet(cl.queryset)
    return date_hierarchy(probing)
