"""The job document every client sees (see DESIGN.md)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
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
        ]
        read_only_fields = fields

    def get_url(self, job: Job) -> str:
        path = reverse("jobs:job-detail", kwargs={"job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_progress(self, job: Job) -> dict[str, Any]:
        return {"percentage": job.progress_percentage, "message": job.progress_message}
