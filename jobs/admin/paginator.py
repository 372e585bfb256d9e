"""A paginator that does not COUNT(*) a million rows on every changelist page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many estimated rows an exact count is cheap enough.
EXACT_COUNT_LIMIT = 10_000


def planner_estimate(queryset) -> int | None:
    """Return PostgreSQL's estimate of the rows ``queryset`` matches, or None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Exact counts for small results; the planner's estimate for large ones on PostgreSQL.

    The admin shows "about" a number for huge filters, which is what staff
    need, at the cost of one EXPLAIN instead of a full scan.
    """

    @cached_property
    def count(self) -> int:
        estimate = planner_estimate(self.object_list)
        if estimate is not None and estimate > EXACT_COUNT_LIMIT:
            return estimate
        return self.object_list.count()
