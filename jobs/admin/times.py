"""How the job admin shows times: to the second, with their zone, and ages that count from a retry."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from jobs.models import Job, JobEventType

# Events after which a job waits again for a worker: a retry by staff, or a
# failed attempt sent back to the queue (by its worker or by the reaper).
REQUEUE_EVENTS = (JobEventType.RETRIED, JobEventType.ATTEMPT_FAILED)


def exact_time(value: datetime | None) -> str:
    """``value`` in the current time zone, to the second ("2026-11-30 17:01:34 UTC"); "-" if None."""
    if value is None:
        return "-"
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S %Z}"


def human_duration(delta: timedelta) -> str:
    """A rounded-down length of time for people: "2 d 3 h", "5 min", "12 s"."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part) or f"{seconds} s"


def last_requeued_at(job: Job) -> datetime | None:
    """When the job was last retried or sent back to the queue, from its timeline; None if never."""
    return job.events.filter(type__in=REQUEUE_EVENTS).order_by("-at").values_list("at", flat=True).first()


def job_age(job: Job, now: datetime | None = None) -> str:
    """How old the job is: since its last retry when it had one, and since its creation."""
    now = now or timezone.now()
    created = f"{human_duration(now - job.created_at)} since it was created"
    retried = last_requeued_at(job)
    if retried is None:
        return created
    return f"{human_duration(now - retried)} since its last retry ({exact_time(retried)}); {created}"


class JobTimesMixin:
    """Read-only fields for a job's times to the second (Django's own format stops at the minute)."""

    @admin.display(description="Created", ordering="created_at")
    def created(self, job: Job) -> str:
        # In the changelist the date and the time may wrap onto two lines,
        # which keeps the column narrow; the title keeps the zone.
        when = timezone.localtime(job.created_at)
        return format_html(
            '<time datetime="{}" title="{}">{} {}</time>',
            when.isoformat(),
            exact_time(when),
            f"{when:%Y-%m-%d}",
            f"{when:%H:%M:%S}",
        )

    @admin.display(description="Created")
    def created_exact(self, job: Job) -> str:
        return exact_time(job.created_at)

    @admin.display(description="Started")
    def started(self, job: Job) -> str:
        return exact_time(job.started_at)

    @admin.display(description="Finished")
    def finished(self, job: Job) -> str:
        return exact_time(job.finished_at)

    @admin.display(description="Not run before")
    def available(self, job: Job) -> str:
        # Set when a failed attempt is retried after a backoff.
        return exact_time(job.available_at)

    @admin.display(description="Expires")
    def expires(self, job: Job) -> str:
        return exact_time(job.expires_at)

    @admin.display(description="Age")
    def age(self, job: Job) -> str:
        return job_age(job)
