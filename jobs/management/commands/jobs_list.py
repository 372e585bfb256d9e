"""List jobs, newest first, with filters: a table for people, JSON lines for scripts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.management.arguments import duration, job_kind, positive_int
from jobs.management.lookup import filter_jobs, short_id
from jobs.models import Job, JobQuerySet, JobStatus

COLUMNS = ("ID", "STATUS", "KIND", "OWNER", "TRIES", "PROGRESS", "CREATED")


def job_line(job: Job) -> dict[str, Any]:
    """One job as a JSON-ready dict: what the table shows, in full."""
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "owner": job.owner.get_username() if job.owner else None,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": {"percentage": job.progress_percentage, "message": job.progress_message},
        "cancel_requested": job.cancel_requested,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _row(job: Job) -> tuple[str, ...]:
    owner = job.owner.get_username() if job.owner else "-"
    created = timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S")
    return (
        short_id(job), job.status, job.kind, owner,
        f"{job.attempts}/{job.max_attempts}", f"{job.progress_percentage}%", created,
    )


class Command(BaseCommand):
    help = "List jobs, newest first. Filters combine; --json prints one JSON object a line."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--status", action="append", choices=JobStatus.values,
            help="only jobs with this status (repeat for several)",
        )
        parser.add_argument("--kind", type=job_kind, help="only jobs of this kind (app.operation)")
        parser.add_argument("--owner", help="only jobs submitted by this username")
        parser.add_argument("--older-than", type=duration, help="created longer ago than this, e.g. 2h")
        parser.add_argument("--newer-than", type=duration, help="created within this, e.g. 15m")
        parser.add_argument("--limit", type=positive_int, default=50, help="at most this many (default 50)")
        parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = self.selection(options)
        shown = list(jobs.select_related("owner")[: options["limit"]])
        if options["json"]:
            for job in shown:
                self.stdout.write(json.dumps(job_line(job), sort_keys=True))
            return
        if not shown:
            self.stdout.write("No jobs match.")
            return
        rows = [COLUMNS, *(_row(job) for job in shown)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if len(shown) == options["limit"]:
            total = jobs.count()
            if total > len(shown):
                self.stdout.write(f"Showing {len(shown)} of {total} jobs; use --limit for more.")

    def selection(self, options: dict[str, Any]) -> JobQuerySet:
        return filter_jobs(Job.objects.order_by("-created_at", "-id"), options)
