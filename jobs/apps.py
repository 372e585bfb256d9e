from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs import checks  # noqa: F401 - registers the system checks

        # Handlers live in each app's `handlers` module; web and worker
        # processes must both know every kind.
        autodiscover_modules("handlers")
