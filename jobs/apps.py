from importlib import import_module
from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


def register_schedules(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """Create the TTL schedule after `migrate`, once, however often migrate runs."""
    if using != DEFAULT_DB_ALIAS:
        return
    from jobs.conf import jobs_settings
    from jobs.queue import ensure_schedules

    ensure_schedules(every_minutes=jobs_settings.PURGE_EVERY_MINUTES)


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs import checks  # noqa: F401 - registers the system checks

        # Handlers live in each app's `handlers` module; web and worker
        # processes must both know every kind.
        autodiscover_modules("handlers")
        from jobs.conf import jobs_settings

        for module in jobs_settings.HANDLER_MODULES:
            import_module(module)
        post_migrate.connect(register_schedules, sender=self, dispatch_uid="jobs.register_schedules")
        from django_q.signals import post_spawn

        from jobs.runner import skip_health_checks

        post_spawn.connect(skip_health_checks, dispatch_uid="jobs.skip_health_checks")
        from jobs.signals import job_finished
        from jobs.webhooks.delivery import deliveries_for_end

        job_finished.connect(deliveries_for_end, dispatch_uid="jobs.webhooks")
