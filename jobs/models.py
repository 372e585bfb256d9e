"""The Job row: the source of truth for every job, and its state machine."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def terminal(cls) -> tuple[str, ...]:
        """Statuses a job never leaves on its own."""
        return (cls.COMPLETED, cls.FAILED, cls.CANCELLED)

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """Statuses of jobs that still have work to do."""
        return (cls.PENDING, cls.PROCESSING)


class JobQuerySet(models.QuerySet["Job"]):
    def for_owner(self, owner: object) -> JobQuerySet:
        return self.filter(owner=owner)

    def pending(self) -> JobQuerySet:
        return self.filter(status=JobStatus.PENDING)

    def processing(self) -> JobQuerySet:
        return self.filter(status=JobStatus.PROCESSING)

    def terminal(self) -> JobQuerySet:
        return self.filter(status__in=JobStatus.terminal())

    def expired(self, now: object | None = None) -> JobQuerySet:
        return self.filter(expires_at__lte=now or timezone.now())


class Job(models.Model):
    """One long-running operation, its progress and its outcome."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="jobs",
        # job_owner_created_idx covers lookups by owner.
        db_index=False,
        help_text="Who submitted the job; empty for system jobs.",
    )
    status = models.CharField(
        max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING
    )

    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    result_status = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="HTTP status the endpoint answered with, for a job that ran an API action.",
    )
    call = models.JSONField(
        default=dict,
        blank=True,
        help_text="How to replay an API action in the worker: path, URL arguments, query, host.",
    )
    error = models.JSONField(null=True, blank=True)
    traceback = models.TextField(blank=True, help_text="Last unexpected failure; staff only.")

    # Scheduling (jobs/scheduling.py): which queue, in what order, from when.
    queue = models.CharField(max_length=100, default="default", help_text="The execution queue it waits in.")
    priority = models.SmallIntegerField(
        default=0, help_text="Higher runs first within its queue; then the oldest first."
    )
    run_at = models.DateTimeField(null=True, blank=True, help_text="Not started before this time.")

    progress_percentage = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    cancel_requested = models.BooleanField(default=False)

    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="The options the client chose (Job-Options header), as applied: timeout, ttl, callback...",
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of kind and payload, to compare key reuse."
    )
    task_id = models.CharField(
        max_length=64, blank=True, help_text="django-q2 id of the last task that carried the job."
    )
    worker = models.CharField(max_length=255, blank=True, help_text="Who ran the last attempt.")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(
        null=True, blank=True, help_text="A retried job is not run before this time."
    )
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a queue message was last sent (or is due) for it."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A processing job whose lease ran out lost its worker; the reaper recovers it.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The API's list: a user's jobs, newest first.
            models.Index(fields=["owner", "-created_at"], name="job_owner_created_idx"),
            # The admin's default ordering and date drill-down.
            models.Index(fields=["-created_at"], name="job_created_idx"),
            # The status filter, and workers, reapers and dashboards that
            # look for active jobs by age.
            models.Index(fields=["status", "-created_at"], name="job_status_created_idx"),
            models.Index(fields=["kind", "-created_at"], name="job_kind_created_idx"),
            # Jobs that finished lately, for /metrics (jobs/metrics.py): a scrape
            # reads the last minutes' rows, not the whole table.
            models.Index(
                fields=["finished_at"],
                name="job_finished_idx",
                condition=Q(finished_at__isnull=False),
            ),
            # The order in which pending jobs are delivered (jobs/delivery.py),
            # and the next delayed one, whose time bounds the pusher's wait.
            models.Index(
                F("priority").desc(),
                "created_at",
                name="job_pending_order_idx",
                condition=Q(status="pending"),
            ),
            models.Index(
                fields=["available_at"],
                name="job_pending_due_idx",
                condition=Q(status="pending", available_at__isnull=False),
            ),
            # The admin dashboard's pending and running jobs by kind, counted
            # from this small index alone (only active rows are in it); also the
            # pending and running jobs of the limited kinds (jobs/delivery.py)
            # and what each worker runs, without reading other kinds' backlog.
            # One index for the three: every index on this table is written
            # two or three times per job.
            models.Index(
                fields=["status", "kind"],
                name="job_active_kind_idx",
                condition=Q(status__in=["pending", "processing"]),
            ),
            models.Index(
                fields=["idempotency_key"],
                name="job_idempotency_key_idx",
                condition=Q(idempotency_key__isnull=False),
            ),
            models.Index(
                fields=["expires_at"],
                name="job_expires_idx",
                condition=Q(expires_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_unique_owner_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(progress_percentage__gte=0, progress_percentage__lte=100),
                name="job_progress_percentage_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.active()) | Q(finished_at__isnull=False),
                name="job_finished_has_finished_at",
            ),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
        ]
        permissions = [
            ("retry_job", "Can retry jobs"),
            ("cancel_job", "Can cancel jobs"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {str(self.id)[:8]} ({self.get_status_display()})"

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in JobStatus.terminal()

    @property
    def duration(self) -> float | None:
        """Seconds from the last start to the finish, if both are known."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobEventType(models.TextChoices):
    CREATED = "created", "Created"
    CLAIMED = "claimed", "Claimed by a worker"
    ATTEMPT_FAILED = "attempt_failed", "Attempt failed"
    RETRIED = "retried", "Retried"
    CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class JobEvent(models.Model):
    """One step in a job's life, kept so staff can tell what happened and who did it."""

    # jobevent_job_at_idx (job, at) serves lookups by job: no second index
    # to update for every event a job writes. No database constraint either:
    # its check locked the job row for each of a job's three or more events
    # (a tenth of the database's work per job). Django deletes a job's events
    # with the job (on_delete=CASCADE runs in Django), the only way jobs are
    # deleted here; delete jobs with raw SQL and you delete their events too.
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=32, choices=JobEventType.choices)
    at = models.DateTimeField(default=timezone.now)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(
        max_length=255, blank=True, help_text="api:<user>, staff:<user>, worker:<host:pid>, reaper..."
    )
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["job", "at"], name="jobevent_job_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_type_display()} at {self.at:%Y-%m-%d %H:%M:%S}"


class JobMinute(models.Model):
    """The jobs of one kind that ended one way in one minute: the dashboard's history.

    Written by the rollup schedule (``jobs.rollups``) from the job table, so
    the dashboard reads 24 hours of history from at most a few thousand small
    rows instead of counting finished jobs, and the counts outlive purges.
    Wait and run times are kept as histogram bucket counts (cumulative, one
    per bound of ``jobs.rollups.BOUNDS`` and a last one for all timed jobs).
    """

    minute = models.DateTimeField()
    kind = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=JobStatus.choices)
    count = models.PositiveIntegerField(default=0)
    wait_buckets = models.JSONField(default=list)
    run_buckets = models.JSONField(default=list)

    class Meta:
        constraints = [
            # Also the index the dashboard reads by (minute first).
            models.UniqueConstraint(fields=["minute", "kind", "status"], name="jobminute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} x{self.count} at {self.minute:%Y-%m-%d %H:%M}"


class QueueSample(models.Model):
    """The queue as the rollup schedule saw it: the dashboard's queue depth over time.

    ``rolled_up_to`` says up to which minute ``JobMinute`` is complete; the
    dashboard counts the jobs that finished after it from the job table.
    """

    at = models.DateTimeField(db_index=True)
    pending = models.PositiveIntegerField(default=0)
    due = models.PositiveIntegerField(default=0, help_text="Pending jobs a worker may take now.")
    processing = models.PositiveIntegerField(default=0)
    oldest_pending_seconds = models.FloatField(default=0.0)
    rolled_up_to = models.DateTimeField()

    class Meta:
        get_latest_by = "at"

    def __str__(self) -> str:
        return f"queue at {self.at:%Y-%m-%d %H:%M:%S}: {self.due} due"


from jobs.tombstone_models import Tombstone, TombstoneReason  # noqa: E402, F401 - its own module


from jobs.webhook_models import WebhookDelivery, WebhookAttempt, WebhookEndpoint  # noqa: E402,F401
