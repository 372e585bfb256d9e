"""Thin views over the jobs services: get, list, cancel, delete, submit."""

from __future__ import annotations

from typing import ClassVar

from django.http import Http404
from django.utils.dateparse import parse_datetime
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.responses import job_accepted_response, job_response
from jobs.api.serializers import JobSerializer
from jobs.api.throttling import JobsRateThrottle
from jobs.events import actor_for_user
from jobs.models import Job, JobStatus
from jobs.selectors import job_get_for_owner, job_list_for_owner
from jobs.services import job_cancel, job_delete, job_submit

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def get_job_or_404(request: Request, job_id: str) -> Job:
    """Return the requester's job; unknown, malformed and foreign ids are all 404."""
    job = job_get_for_owner(owner=request.user, job_id=job_id)
    if job is None:
        raise Http404("No job with this id.")
    return job


class JobDetailView(APIView):
    """``GET`` a job document (ETag, 304, Retry-After); ``DELETE`` a finished job."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.poll"

    def get(self, request: Request, job_id: str) -> Response:
        return job_response(get_job_or_404(request, job_id), request)

    def delete(self, request: Request, job_id: str) -> Response:
        job_delete(job=get_job_or_404(request, job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCancelView(APIView):
    """Cancel a job: 200 once cancelled, 202 while a running job winds down, 409 if finished."""

    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(
            job=get_job_or_404(request, job_id), actor=actor_for_user(request.user, via="api")
        )
        code = status.HTTP_200_OK if job.is_terminal else status.HTTP_202_ACCEPTED
        return job_response(job, request, status=code)


class JobPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 100

    def decode_cursor(self, request: Request):
        # DRF trusts the position inside a well-formed cursor; a tampered one
        # would reach the created_at filter and fail there with a 500.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class JobListView(ListAPIView):
    """The requester's jobs, newest first; ``?status=`` and ``?kind=`` filter."""

    serializer_class = JobSerializer
    pagination_class = JobPagination

    def get_queryset(self):
        wanted = self.request.query_params.get("status") or None
        if wanted and wanted not in JobStatus.values:
            raise ValidationError(
                {"status": [f"Unknown status {wanted!r}. Use one of: {', '.join(JobStatus.values)}."]}
            )
        kind = self.request.query_params.get("kind") or None
        if kind and (len(kind) > 100 or "\x00" in kind):
            raise ValidationError({"kind": ["Send a job kind name of at most 100 characters."]})
        return job_list_for_owner(owner=self.request.user, status=wanted, kind=kind)


class JobSubmitView(APIView):
    """Base view that turns a POST into a job of ``kind``: 202 and the job document.

    Subclass it with ``kind = "app.action"``; the kind's serializer validates
    the body. An ``Idempotency-Key`` header makes retries of the POST safe.
    """

    kind: ClassVar[str]
    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    def post(self, request: Request) -> Response:
        submission = job_submit(
            kind=self.kind,
            payload=request.data,
            owner=request.user,
            idempotency_key=idempotency_key_from(request),
        )
        return job_accepted_response(submission.job, request, replayed=not submission.created)


def idempotency_key_from(request: Request) -> str | None:
    """Read and check the ``Idempotency-Key`` header (bare or quoted string)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
        raise ValidationError(
            {
                "Idempotency-Key": [
                    f"Send 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters, "
                    "for example a UUID."
                ]
            }
        )
    return key
