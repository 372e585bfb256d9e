"""Cancel jobs that have not finished: pending ones at once, processing ones at their next check."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.db.models import Count

from jobs.maintenance import jobs_bulk_cancel
from jobs.management.arguments import duration, job_kind, positive_int
from jobs.management.confirm import USAGE_ERROR, ConfirmingCommand
from jobs.management.lookup import filter_jobs, job_by_reference
from jobs.models import Job, JobStatus


class Command(ConfirmingCommand):
    help = (
        "Cancel unfinished jobs: the ids given, or those matching the filters. Pending jobs are "
        "cancelled at once; processing ones are asked to stop. Asks first on a terminal; "
        "without one, needs --yes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ids", nargs="*", help="job ids (full or the first 8 characters)")
        parser.add_argument("--status", choices=JobStatus.active(), help="only pending or only processing jobs")
        parser.add_argument("--kind", type=job_kind, help="only jobs of this kind (app.operation)")
        parser.add_argument("--owner", help="only jobs submitted by this username")
        parser.add_argument("--older-than", type=duration, help="created longer ago than this, e.g. 2h")
        parser.add_argument("--all", action="store_true", help="with no ids nor filters: every unfinished job")
        self.add_confirmation_arguments(parser, dry_run_help="print what would be cancelled; change nothing")
        parser.add_argument("--batch-size", type=positive_int, default=500, help="jobs per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = Job.objects.filter(status__in=JobStatus.active())
        filtered = options["ids"] or any(options[name] for name in ("status", "kind", "owner", "older_than"))
        if not filtered and not options["all"]:
            raise CommandError(
                "Name job ids, give a filter, or pass --all to cancel every unfinished job.",
                returncode=USAGE_ERROR,
            )
        if options["ids"]:
            jobs = jobs.filter(pk__in=[job_by_reference(ref).pk for ref in options["ids"]])
        jobs = filter_jobs(jobs, options)

        rows = sorted(jobs.order_by().values_list("status", "kind").annotate(n=Count("pk")))
        total = sum(count for _, _, count in rows)
        if options["dry_run"]:
            for status, kind, count in rows:
                self.stdout.write(f"  {count:>8}  {status:<10} {kind}")
            self.stdout.write(f"Dry run: {total} jobs would be cancelled. Nothing was changed.")
            return
        if total:
            self.confirm(f"Cancel {total} jobs?", **options)
        result = jobs_bulk_cancel(jobs, actor="command:cancel_jobs", batch_size=options["batch_size"])
        self.stdout.write(
            self.style.SUCCESS(f"Cancelled {result.changed} jobs (processing ones stop at their next check).")
        )
