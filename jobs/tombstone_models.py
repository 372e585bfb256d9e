"""Tombstones: what is left of a removed job, so its owner hears ``410 Gone`` instead of ``404``."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TombstoneReason(models.TextChoices):
    EXPIRED = "expired", "Expired (its time to live passed)"
    DELETED = "deleted", "Deleted by its owner"
    PURGED = "purged", "Purged by staff"


class Tombstone(models.Model):
    """A job that was removed: its id, owner and kind, when and why.

    Written in the transaction that deletes the job (``jobs.tombstones``),
    read only when a job lookup found nothing, and deleted itself after
    ``JOBS_TOMBSTONE_RETENTION`` seconds by the TTL schedule.
    """

    # The removed job's id: looking a tombstone up is a primary-key read.
    job_id = models.UUIDField(primary_key=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=100)
    removed_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=16, choices=TombstoneReason.choices)

    class Meta:
        ordering = ["-removed_at"]

    def __str__(self) -> str:
        return f"{self.kind} {str(self.job_id)[:8]} ({self.reason} at {self.removed_at:%Y-%m-%d %H:%M:%S})"
