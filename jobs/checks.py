"""System checks for settings that would make jobs run twice or never."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from jobs.conf import jobs_settings
from jobs.registry import all_kinds


@register()
def check_cluster_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check django-q2's retry and max_attempts against the registered kinds."""
    errors: list[Error] = []
    cluster = getattr(settings, "Q_CLUSTER", {})
    retry = cluster.get("retry", 60)
    margin = jobs_settings.RETRY_MARGIN
    for kind in all_kinds():
        if retry <= kind.queue_timeout + margin:
            errors.append(
                Error(
                    f"Q_CLUSTER['retry'] ({retry}s) is not larger than the timeout of job kind "
                    f"{kind.name!r} ({kind.queue_timeout}s with the kill margin) plus a "
                    f"{margin}s margin.",
                    hint="Raise Q_CLUSTER['retry'], or lower the kind's timeout: otherwise "
                    "django-q2 delivers a task again while it still runs.",
                    id="jobs.E001",
                )
            )
    if cluster.get("max_attempts", 0) == 0:
        errors.append(
            Error(
                "Q_CLUSTER['max_attempts'] is 0, so django-q2 re-delivers a failing task forever.",
                hint="Set Q_CLUSTER['max_attempts'] to a small number such as 3.",
                id="jobs.E002",
            )
        )
    return errors
