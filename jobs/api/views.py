"""Thin views over the jobs services: get, list, cancel, delete."""

from __future__ import annotations

from datetime import UTC

from django.http import Http404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api import schema as docs
from jobs.api import schema_async
from jobs.api.responses import job_accepted_response, job_response
from jobs.api.serializers import JobSerializer
from jobs.api.throttling import JobsRateThrottle
from jobs.models import Job, JobStatus
from jobs.selectors import job_get_for_owner, job_list_for_owner
from jobs.services import job_cancel, job_delete, job_retry
from jobs.timeline import actor_for_user
from jobs.tombstones import tombstone_for_owner, tombstone_gone

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def get_job_or_404(request: Request, job_id: str) -> Job:
    """Return the requester's job; unknown, malformed and foreign ids are all 404.

    The requester's own job that was removed lately is ``JobGone`` (410)
    instead: the tombstone is read only here, once the job was not found.
    """
    job = job_get_for_owner(owner=request.user, job_id=job_id)
    if job is None:
        tombstone = tombstone_for_owner(owner=request.user, job_id=job_id)
        if tombstone is not None:
            raise tombstone_gone(tombstone)
        raise Http404("No job with this id.")
    return job


class JobDetailView(APIView):
    """``GET`` a job document (ETag, 304, Retry-After); ``DELETE`` a finished job."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.poll"

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_retrieve",
        summary="Get a job (poll it)",
        description="The job document. Poll until `status` is final, waiting `Retry-After` seconds "
        "between polls; send `If-None-Match` with the last `ETag` to get `304` while nothing changed. "
        "With `?wait=N` and `If-None-Match`, a long poll: the answer comes as soon as the job "
        "changes, or as `304` after N seconds (at most 30). A job of yours that was removed "
        "(expired, deleted, purged) is `410` with when and why, also when it goes during a long poll.",
        parameters=[
            docs.JOB_ID,
            docs.IF_NONE_MATCH,
            schema_async.WAIT,
            *docs.job_document_headers([200], etag_on_304=True),
            docs.RETRY_AFTER_ON_429,
            docs.WWW_AUTHENTICATE_ON_401,
        ],
        responses={
            200: docs.poll_response("The job document."),
            304: OpenApiResponse(
                description="Not modified: the job is as in your `If-None-Match`. No body."
            ),
            400: OpenApiResponse(
                docs.BAD_REQUEST_BODY, description="`wait` is not a whole number of seconds."
            ),
            401: docs.UNAUTHORIZED,
            404: docs.JOB_NOT_FOUND,
            410: docs.JOB_GONE,
            429: docs.THROTTLED,
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = get_job_or_404(request, job_id)
        response = job_response(job, request)
        response.job = job  # what a long poll (jobs.api.streams) watches
        return response

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_destroy",
        summary="Delete a finished job",
        description="Only completed, failed and cancelled jobs can be deleted; cancel an active job first.",
        parameters=[docs.JOB_ID, docs.RETRY_AFTER_ON_429, docs.WWW_AUTHENTICATE_ON_401],
        responses={
            204: OpenApiResponse(description="Deleted."),
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            404: docs.JOB_NOT_FOUND,
            409: docs.error_response(
                "The job is still pending or processing (`job_not_finished`).",
            ),
            410: docs.JOB_GONE,
            429: docs.THROTTLED,
        },
    )
    def delete(self, request: Request, job_id: str) -> Response:
        job_delete(job=get_job_or_404(request, job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCancelView(APIView):
    """Cancel a job: 200 once cancelled, 202 while a running job winds down, 409 if finished."""

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_cancel",
        summary="Cancel a job",
        description="A pending job is cancelled at once (`200`, status `cancelled`). A processing job "
        "is asked to stop (`202`, `cancel_requested: true`): it stops at its next progress report, "
        "or completes if it is past the point of no return. No request body.",
        request=None,
        parameters=[
            docs.JOB_ID,
            *docs.job_document_headers([200, 202]),
            docs.WWW_AUTHENTICATE_ON_401,
        ],
        responses={
            200: docs.job_document_response("Cancelled: the job document, status `cancelled`."),
            202: docs.job_document_response(
                "Cancel requested: the job is still processing; poll it to see how it ends."
            ),
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            404: docs.JOB_NOT_FOUND,
            409: docs.error_response("The job has already finished (`job_finished`)."),
            410: docs.JOB_GONE,
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(
            job=get_job_or_404(request, job_id), actor=actor_for_user(request.user, via="api")
        )
        code = status.HTTP_200_OK if job.is_terminal else status.HTTP_202_ACCEPTED
        return job_response(job, request, status=code)


class JobRetryView(APIView):
    """Run a failed or cancelled job again, where its kind allows it: 202, or 409 saying why not."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_retry",
        summary="Retry a failed or cancelled job",
        description="Sends your failed or cancelled job back to `pending` under the same id, with "
        "fresh attempts; its timeline records that you retried it. Only for kinds that declare "
        "themselves safe to run again (a report, not a payment). No request body.",
        request=None,
        parameters=[
            docs.JOB_ID,
            *docs.job_document_headers([202]),
            docs.response_header("Location", [202], "The job's URL path.", required=True),
            docs.RETRY_AFTER_ON_429,
            docs.WWW_AUTHENTICATE_ON_401,
        ],
        responses={
            202: docs.job_document_response("Retried: the job document, status `pending`."),
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            404: docs.JOB_NOT_FOUND,
            409: docs.error_response(
                "Not retried: the job's kind does not allow it (`retry_not_allowed`: running it "
                "again could repeat what it did; submit a new request), or the job is not failed "
                "or cancelled (`job_not_retryable`)."
            ),
            410: docs.JOB_GONE,
            429: docs.THROTTLED,
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = job_retry(
            job=get_job_or_404(request, job_id), actor=actor_for_user(request.user, via="api")
        )
        return job_accepted_response(job, request)


class JobPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        # DRF silently falls back to the default for a bad page_size; say so.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ValidationError(
                {"page_size": [f"Send a whole number from 1 to {self.max_page_size}."]}
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF's cursor, its position checked and rewritten as a UTC timestamp.

        DRF trusts the position inside a well-formed cursor; a tampered one
        would reach the created_at filter and fail there with a 500: not a
        timestamp, naive, an offset PostgreSQL refuses (beyond 15:59), or a
        time outside Python's years 1-9999 once in UTC. Any of these is an
        invalid cursor (404, as DRF answers for a malformed one).
        """
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            position = parse_datetime(cursor.position)
            if position is None or position.utcoffset() is None:
                raise ValueError("not an aware timestamp")
            # The cursors this API gives out are UTC; any other offset was
            # made by hand. Converting keeps every database on safe ground.
            position = position.astimezone(UTC)
        except (ValueError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor._replace(position=str(position))


@extend_schema(
    tags=["jobs"],
    summary="List your jobs",
    description="Your jobs, newest first, cursor-paginated: follow `next` and `previous`.",
    parameters=[
        OpenApiParameter(
            "status",
            type=str,
            enum=JobStatus.values,
            description="Only jobs in this status.",
        ),
        OpenApiParameter(
            "page_size",
            type={"type": "integer", "minimum": 1},
            description="Results per page: 20 unless given, at most 100 (larger values are capped).",
        ),
        OpenApiParameter(
            "kind",
            type={"type": "string", "maxLength": 100},
            description="Only jobs of this kind (`app.operation`).",
        ),
        docs.WWW_AUTHENTICATE_ON_401,
    ],
    responses={
        200: OpenApiResponse(JobSerializer(many=True), description="A page of your jobs."),
        400: OpenApiResponse(
            docs.BAD_REQUEST_BODY, description="An unknown `status`, or an over-long `kind`."
        ),
        401: docs.UNAUTHORIZED,
        404: docs.error_response("The `cursor` is not one this API gave out (`Invalid cursor`)."),
    },
)
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
