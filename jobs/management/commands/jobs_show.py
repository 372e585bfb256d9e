"""Show one job and its timeline; --follow prints each change until the job ends."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.management.arguments import positive_int
from jobs.management.commands.jobs_list import job_line
from jobs.management.lookup import job_by_reference
from jobs.models import Job, JobEvent


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def event_text(event: JobEvent) -> str:
    parts = [_when(event.at), event.type]
    if event.attempt is not None:
        parts.append(f"attempt {event.attempt}")
    if event.actor:
        parts.append(f"by {event.actor}")
    text = "  ".join(parts)
    return f"{text}: {event.message}" if event.message else text


def state_text(job: Job) -> str:
    text = f"{_when(timezone.now())}  {job.status}  {job.progress_percentage}%"
    return f"{text}  {job.progress_message}" if job.progress_message else text


class Command(BaseCommand):
    help = "Show a job (by its full id or 8-character short id) and its timeline."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("id", help="the job's id, or its first 8 characters")
        parser.add_argument("--follow", action="store_true", help="print each change until the job ends")
        parser.add_argument("--interval", type=positive_int, default=1, help="seconds between looks (--follow)")
        parser.add_argument("--json", action="store_true", help="print the job and its timeline as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        job = job_by_reference(options["id"])
        events = list(job.events.all())
        if options["json"]:
            document = job_line(job) | {
                "result": job.result,
                "timeline": [
                    {"at": event.at.isoformat(), "type": event.type, "attempt": event.attempt,
                     "actor": event.actor, "message": event.message}
                    for event in events
                ],
            }
            self.stdout.write(json.dumps(document, sort_keys=True, default=str))
        else:
            self.describe(job, events)
        if options["follow"]:
            self.follow(job, events[-1].pk if events else 0, options["interval"])

    def describe(self, job: Job, events: list[JobEvent]) -> None:
        owner = job.owner.get_username() if job.owner else "-"
        fields = [
            ("Job", str(job.pk)),
            ("Kind", job.kind),
            ("Status", job.status + (" (cancel requested)" if job.cancel_requested and not job.is_terminal else "")),
            ("Owner", owner),
            ("Progress", f"{job.progress_percentage}% {job.progress_message}".rstrip()),
            ("Attempts", f"{job.attempts} of {job.max_attempts}"),
            ("Created", _when(job.created_at)),
            ("Started", _when(job.started_at)),
            ("Finished", _when(job.finished_at)),
            ("Expires", _when(job.expires_at)),
        ]
        if job.worker:
            fields.append(("Worker", job.worker))
        if job.error:
            fields.append(("Error", f"{job.error.get('code', '')}: {job.error.get('message', '')}"))
        if job.result is not None:
            fields.append(("Result", json.dumps(job.result, sort_keys=True, default=str)))
        for label, value in fields:
            self.stdout.write(f"{label + ':':<10} {value}")
        self.stdout.write("Timeline:")
        for event in events:
            self.stdout.write(f"  {event_text(event)}")
        if not events:
            self.stdout.write("  (no events)")

    def follow(self, job: Job, last_event: int, interval: int) -> None:
        """Look every ``interval`` seconds; print new events and changes of state until the job ends."""
        state = (job.status, job.progress_percentage, job.progress_message)
        try:
            while not job.is_terminal:
                time.sleep(interval)
                try:
                    job.refresh_from_db()
                except Job.DoesNotExist:
                    raise CommandError(f"Job {job.pk} was deleted.") from None
                for event in job.events.filter(pk__gt=last_event).order_by("pk"):
                    self.stdout.write(f"  {event_text(event)}")
                    last_event = event.pk
                now = (job.status, job.progress_percentage, job.progress_message)
                if now != state:
                    self.stdout.write(state_text(job))
                    state = now
        except KeyboardInterrupt:
            self.stdout.write("Stopped following; the job goes on.")
            return
        self.stdout.write(f"Job {job.status}.")
