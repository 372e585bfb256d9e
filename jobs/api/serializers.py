"""The job document every client sees.

Its fields are described for clients in the OpenAPI schema (component `Job`,
written by `jobs.api.schema.JobSerializerExtension`) and in README.md, "The API".
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    """Serialize a job for its owner; tracebacks and internals stay out."""

    url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "progress",
            "result",
            "result_status",
            "error",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "queue",
            "priority",
            "run_at",
            "options",
        ]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict[str, Any]:
        """The document, as ``job_document`` builds it."""
        return job_document(job, self.context.get("request"))

    def get_url(self, job: Job) -> str:
        return _url(job, self.context.get("request"))

    def get_progress(self, job: Job) -> dict[str, Any]:
        return _progress(job)


def job_document(job: Any, request: Any = None) -> dict[str, Any]:
    """The job document of ``job`` (a ``Job``, or anything read like one), with absolute URLs for ``request``.

    The same output as DRF's field-by-field serialization with the fields of
    ``JobSerializer`` (which still describe it for the OpenAPI schema), at a
    fraction of the cost: a poll should cost about what its query does.
    """
    tz = timezone.get_current_timezone()  # once, not per date
    return {
        "id": str(job.pk),
        "url": _url(job, request),
        "kind": job.kind,
        "status": job.status,
        "progress": _progress(job),
        "result": job.result,
        "result_status": job.result_status,
        "error": job.error,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "created_at": _iso(job.created_at, tz),
        "started_at": _iso(job.started_at, tz),
        "finished_at": _iso(job.finished_at, tz),
        "expires_at": _iso(job.expires_at, tz),
        "queue": job.queue,
        "priority": job.priority,
        "run_at": _iso(job.run_at, tz),
        "options": job.options,
    }


def _url(job: Any, request: Any) -> str:
    path = job_path(job.pk)
    return request.build_absolute_uri(path) if request else path


def _progress(job: Any) -> dict[str, Any]:
    return {"percentage": job.progress_percentage, "message": job.progress_message}


def _iso(value: datetime | None, tz: tzinfo) -> str | None:
    # As DRF's DateTimeField writes it: ISO 8601 in the current time zone, "Z" for UTC.
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text



# (URLconf, script prefix) -> the job path before and after the job's id.
_path_parts: dict[tuple[object, str], tuple[str, str]] = {}
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def job_path(job_id: object) -> str:
    """The path clients poll for job ``job_id``: ``reverse()`` of it, which costs a third of a job document.

    Reversed once per URLconf and script prefix with a placeholder id; a
    job id (a UUID) needs no quoting, so the rest is a concatenation.
    """
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    parts = _path_parts.get(key)
    if parts is None:
        head, _, tail = reverse("jobs:job-detail", kwargs={"job_id": _PLACEHOLDER}).partition(_PLACEHOLDER)
        parts = _path_parts[key] = (head, tail)
    return f"{parts[0]}{job_id}{parts[1]}"
