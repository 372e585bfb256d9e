"""Admin for jobs: registered on import by Django's admin autodiscovery."""

from jobs.admin import queue_admin  # noqa: F401 - restricts django-q2's admin pages
from jobs.admin.job_admin import JobAdmin
from jobs.admin.tombstone_admin import TombstoneAdmin

__all__ = ["JobAdmin", "TombstoneAdmin"]
