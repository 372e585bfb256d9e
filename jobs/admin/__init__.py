"""Admin for jobs: registered on import by Django's admin autodiscovery."""

from jobs.admin.job_admin import JobAdmin

__all__ = ["JobAdmin"]
