"""Settings and checks shared by the queue, limit and priority tests."""

from __future__ import annotations

from typing import Any

# The queue limits of the tests: the project's own and the test queue's.
QUEUE_LIMITS = ["reports=2", "tests.pair=2"]
# The same for a cluster started by a test (jobs.conf reads JOBS_* variables).
CLUSTER_ENV = {"JOBS_QUEUE_LIMITS": ",".join(QUEUE_LIMITS)}


def most_at_once(intervals: list[tuple[Any, Any]]) -> int:
    """The largest number of (start, end) intervals that overlap at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak
