"""Send failed (or cancelled) jobs back to the queue with fresh attempts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.utils import timezone

from jobs.maintenance import RETRYABLE, jobs_bulk_retry
from jobs.management.arguments import duration, job_kind, positive_int
from jobs.management.confirm import ConfirmingCommand
from jobs.models import Job, JobStatus


class Command(ConfirmingCommand):
    help = (
        "Retry failed jobs (or cancelled ones with --status cancelled). Asks first on a terminal; "
        "without one, needs --yes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--status", choices=[status.value for status in RETRYABLE], default=JobStatus.FAILED)
        parser.add_argument("--kind", type=job_kind, help="only jobs of this kind (app.operation)")
        parser.add_argument("--since", type=duration, help="only jobs that finished within this, e.g. 2h")
        self.add_confirmation_arguments(parser, dry_run_help="print what would be retried; change nothing")
        parser.add_argument("--batch-size", type=positive_int, default=500, help="jobs per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = Job.objects.filter(status=options["status"])
        if options["kind"]:
            jobs = jobs.filter(kind=options["kind"])
        if options["since"] is not None:
            jobs = jobs.filter(finished_at__gte=timezone.now() - options["since"])

        if options["dry_run"]:
            rows = sorted(jobs.order_by().values_list("kind").annotate(n=Count("pk")))
            for kind, count in rows:
                self.stdout.write(f"  {count:>8}  {kind}")
            total = sum(count for _, count in rows)
            self.stdout.write(f"Dry run: {total} {options['status']} jobs would be retried. Nothing was changed.")
            return

        total = jobs.count()
        if total:
            self.confirm(f"Retry {total} {options['status']} jobs?", **options)
        result = jobs_bulk_retry(jobs, actor="command:retry_jobs", batch_size=options["batch_size"])
        self.stdout.write(self.style.SUCCESS(f"Retried {result.changed} {options['status']} jobs."))
