"""Delete finished jobs: the expired ones by default, or those matching filters."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.utils import timezone

from jobs.maintenance import jobs_bulk_purge
from jobs.management.arguments import duration, job_kind, positive_int
from jobs.management.confirm import ConfirmingCommand
from jobs.models import Job, JobStatus, TombstoneReason


class Command(ConfirmingCommand):
    help = (
        "Delete finished jobs. Without --older-than or --status, deletes the jobs whose time "
        "to live has passed. Pending and processing jobs are never deleted. Asks first on a "
        "terminal; without one, needs --yes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--older-than", type=duration, help="finished longer ago than this, e.g. 7d")
        parser.add_argument("--status", choices=[status.value for status in JobStatus.terminal()], help="only jobs with this status")
        parser.add_argument("--kind", type=job_kind, help="only jobs of this kind (app.operation)")
        self.add_confirmation_arguments(parser, dry_run_help="print what would go; change nothing")
        parser.add_argument("--batch-size", type=positive_int, default=1000, help="jobs per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        jobs = Job.objects.filter(status__in=JobStatus.terminal())
        if options["older_than"] is None and options["status"] is None:
            jobs = jobs.expired(now)
            scope, reason = "expired jobs", TombstoneReason.EXPIRED
        else:
            scope, reason = "finished jobs", TombstoneReason.PURGED
        if options["older_than"] is not None:
            jobs = jobs.filter(finished_at__lt=now - options["older_than"])
        if options["status"]:
            jobs = jobs.filter(status=options["status"])
        if options["kind"]:
            jobs = jobs.filter(kind=options["kind"])

        if options["dry_run"]:
            rows = jobs.order_by().values_list("status", "kind").annotate(n=Count("pk"))
            total = 0
            for status, kind, count in sorted(rows):
                self.stdout.write(f"  {count:>8}  {status:<10} {kind}")
                total += count
            self.stdout.write(f"Dry run: {total} {scope} would be deleted. Nothing was changed.")
            return

        total = jobs.count()
        if total:
            self.confirm(f"Delete {total} {scope}?", **options)

        done = {"n": 0}

        def progress(ids: list) -> None:
            done["n"] += len(ids)
            if options["verbosity"] >= 1 and done["n"] % (options["batch_size"] * 10) < len(ids):
                self.stdout.write(f"  ... {done['n']} deleted so far")

        result = jobs_bulk_purge(
            jobs, batch_size=options["batch_size"], on_batch=progress, reason=reason
        )
        self.stdout.write(self.style.SUCCESS(f"Deleted {result.changed} {scope}."))
