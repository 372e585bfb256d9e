"""OpenAPI pieces for jobs on request (``Prefer: respond-async``), long polls and event streams.

Documentation only, like ``jobs.api.schema``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema

from jobs.api import schema as docs

WAIT = OpenApiParameter(
    "wait",
    type={"type": "integer", "minimum": 0},
    location=OpenApiParameter.QUERY,
    description="Long poll: with `If-None-Match`, hold the request up to this many seconds (at most "
    "30) and answer as soon as the job differs from that ETag; `304` if it did not change.",
)

PREFER = OpenApiParameter(
    "Prefer",
    type=str,
    location=OpenApiParameter.HEADER,
    description="`respond-async` (RFC 7240) runs the operation as a job: `202` and the job document. "
    "`respond-async, wait=N` first waits up to N seconds (at most 10) and answers inline if the job "
    "finished by then.",
)

X_JOB_FLAG = OpenApiParameter(
    "X-Job-Flag",
    type=str,
    location=OpenApiParameter.HEADER,
    description="`ON` is the same as `Prefer: respond-async` (other values are ignored); the `202` "
    "carries `X-Job-Flag: ON`.",
)


JOB_OPTIONS = OpenApiParameter(
    "Job-Options",
    type=str,
    location=OpenApiParameter.HEADER,
    description="With a job request: options for the job, an RFC 9651 dictionary, e.g. `timeout=30, "
    'ttl=3600, priority=10, run-at="2026-12-01T09:00:00Z", callback="https://example.com/hooks/jobs"`. '
    "`timeout` (seconds, at most the operation's own limit), `ttl` (seconds a finished job is kept, "
    "default bounds 60 to 604800), `priority` (higher first; at most 10 unless staff), `run-at` (RFC "
    "3339, now to 30 days ahead), `callback` (an https URL told when the job ends, signed as your "
    "webhooks are). An unknown key, a malformed header or a value out of bounds is a `400` "
    "(`invalid_job_options`, naming the bound) and no job, as is a header over 2000 characters; the applied options show in the job's "
    "`options`. Ignored when the operation answers inline.",
)


def job_capable_schema(
    request: Any,
    response: Any,
    *,
    summary: str,
    description: str,
    inline_status: int = 200,
    always: bool = False,
    request_examples: list[OpenApiExample] = (),
    **kwargs: Any,
) -> Any:
    """``@extend_schema`` for an action decorated with ``@runs_as_job``: inline or a job.

    ``always`` documents an action that is a job on every call (``always=True``).
    """
    if always:
        inline = (
            "The answer, inline: only with `Prefer: respond-async, wait=N` when the job "
            "finished within N seconds. A job's `result` holds the same body."
        )
        accepted = (
            "A job (always): poll `Location`, or follow `/api/jobs/{id}/events/`; its `result` "
            "will be the body of the inline answer."
        )
    else:
        inline = (
            "The answer, inline: without `Prefer`, or when the job finished within `wait`. "
            "A job's `result` holds the same body."
        )
        accepted = (
            "A job (asked for with `Prefer: respond-async` or `X-Job-Flag: ON`): poll `Location`, "
            "or follow `/api/jobs/{id}/events/`; its `result` will be the inline answer's body."
        )
    return extend_schema(
        **kwargs,
        summary=summary,
        description=description,
        request={"application/json": request},
        parameters=[
            PREFER,
            X_JOB_FLAG,
            JOB_OPTIONS,
            docs.IDEMPOTENCY_KEY,
            *docs.job_document_headers([202]),
            docs.response_header("Location", [202], "The job's URL path.", required=True),
            docs.response_header(
                "Retry-After",
                [202],
                "Seconds to wait before polling.",
                required=True,
                schema=docs.RETRY_AFTER_SCHEMA,
            ),
            docs.response_header(
                "Idempotent-Replayed",
                [202],
                "`true` when an earlier request with the same `Idempotency-Key` created this job.",
                schema={"type": "string", "enum": ["true"]},
            ),
            docs.response_header(
                "Preference-Applied", [202], "`respond-async`: the job you asked for."
            ),
            docs.response_header("X-Job-Flag", [202], "`ON`: the answer is a job.", required=True),
            docs.RETRY_AFTER_ON_429,
            docs.WWW_AUTHENTICATE_ON_401,
        ],
        responses={
            inline_status: OpenApiResponse(response, description=inline),
            202: docs.job_document_response(accepted),
            400: docs.BAD_REQUEST,
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            413: docs.PAYLOAD_TOO_LARGE,
            415: docs.UNSUPPORTED_MEDIA_TYPE,
            422: docs.error_response(
                "Refused by the operation (its `code`), or an `Idempotency-Key` reused with another body."
            ),
            429: docs.THROTTLED,
        },
        examples=list(request_examples),
    )


events_schema = extend_schema(
    tags=["jobs"],
    operation_id="jobs_events",
    summary="Follow a job's changes (Server-Sent Events)",
    description="A `text/event-stream`: a `status` event with the job document at once and whenever "
    "the status changes, a `progress` event whenever the progress changes, each with an `id`; "
    "comment lines keep the connection alive. The stream ends after the final status, or after a "
    "`deleted` event if the job is removed meanwhile (its `data`: the `410` body, when and why, "
    "or `{}` when that is no longer kept). Reconnect "
    "with `Last-Event-ID` to resume: the current state comes at once if it changed since; `204` "
    "if the job had already finished at that event.",
    parameters=[docs.JOB_ID, docs.RETRY_AFTER_ON_429, docs.WWW_AUTHENTICATE_ON_401],
    responses={
        (200, "text/event-stream"): OpenApiResponse(
            {
                "type": "object",
                "description": "One server-sent event.",
                "properties": {
                    "event": {"type": "string", "enum": ["status", "progress", "deleted"]},
                    "id": {"type": "string", "description": "Send it back as `Last-Event-ID`."},
                    "data": {"type": "string", "description": "The job document, in JSON."},
                    "retry": {"type": "integer"},
                },
            },
            description="The event stream; each event's `data` is the job document in JSON. "
            "Served by an ASGI server it follows the job to its end; under WSGI it carries the "
            "current state only and EventSource reconnects after `retry` milliseconds.",
        ),
        204: OpenApiResponse(description="The job had finished at `Last-Event-ID`: nothing more."),
        401: docs.UNAUTHORIZED,
        404: docs.JOB_NOT_FOUND,
        410: docs.JOB_GONE,
        429: docs.THROTTLED,
    },
)
