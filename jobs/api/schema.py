"""OpenAPI pieces shared by the job endpoints and the apps that submit jobs.

Apps import them through ``jobs.api.public``.

Documentation only: nothing here changes what a view does. drf-spectacular
reads these declarations (``@extend_schema`` on the views, the extensions
below) to build ``/api/schema/``; ``tests/integration/test_openapi.py`` keeps
them honest against the real serializers and responses.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
)
from rest_framework import serializers

from jobs.models import JobStatus, TombstoneReason

# --- Error bodies -----------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """An error that is not about fields: `detail`, and `code` where there is one."""

    detail = serializers.CharField(help_text="A message for humans.")
    code = serializers.CharField(
        required=False,
        help_text="A stable machine-readable code, where the API has one "
        "(`invalid_state`, `job_finished`, `job_not_finished`, `idempotency_key_reused`).",
    )


class FieldErrorsSerializer(serializers.Serializer):
    """Validation errors: each key a field (or ``non_field_errors``, ``Idempotency-Key``).

    A key holds a list of messages; a list field such as ``goods`` holds one
    object per item (empty for valid items), a nested object its own errors.
    The schema is written by ``FieldErrorsExtension``.
    """


class FieldErrorsExtension(OpenApiSerializerExtension):
    target_class = FieldErrorsSerializer

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "FieldErrors"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": (
                "Field errors: each key names a field (`non_field_errors` for the body as a whole, "
                "`Idempotency-Key` for that header) and holds a list of messages; list fields hold "
                "one object of errors per item."
            ),
            "minProperties": 1,
            "additionalProperties": {
                "anyOf": [
                    {"type": "array", "items": {}},
                    {"type": "object", "additionalProperties": {}},
                ]
            },
        }


BAD_REQUEST_BODY = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[ErrorSerializer, FieldErrorsSerializer],
    resource_type_field_name=None,
)


def error_response(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """An ``{"detail", "code"?}`` response with ``description``."""
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(examples))


BAD_REQUEST = OpenApiResponse(
    BAD_REQUEST_BODY,
    description='Invalid request: `{"detail"}` for a body that is not JSON (or nested too deeply), '
    "otherwise field errors. Nothing was created or changed.",
)
UNAUTHORIZED = error_response(
    "No credentials, or an unknown token. The `WWW-Authenticate` header says `Bearer`.",
    OpenApiExample(
        "Not authenticated",
        value={"detail": "Authentication credentials were not provided."},
        response_only=True,
        status_codes=["401"],
    ),
)
FORBIDDEN_CSRF = error_response(
    "Session-authenticated unsafe requests need the CSRF token (`X-CSRFToken` header); "
    "bearer-token requests never get this."
)
JOB_NOT_FOUND = error_response(
    "No such job for you: unknown ids, ids that are not UUIDs and other users' jobs all look the same."
)


class GoneSerializer(ErrorSerializer):
    """A job of yours that was removed: when and why (``410 Gone``)."""

    code = serializers.CharField(help_text="`job_gone`.")
    id = serializers.UUIDField(help_text="The removed job's id.")
    kind = serializers.CharField(help_text="The removed job's kind.")
    removed_at = serializers.DateTimeField(help_text="When it was removed.")
    reason = serializers.ChoiceField(
        choices=TombstoneReason.choices,
        help_text="`expired` (its time to live passed), `deleted` (by you) or `purged` (by staff).",
    )


JOB_GONE = OpenApiResponse(
    GoneSerializer,
    description="Gone: your job was removed (expired, deleted or purged), with its result. Said for "
    "`JOBS_TOMBSTONE_RETENTION` (7 days by default) after the removal; `404` after that. Final: "
    "asking again will not bring it back.",
    examples=[
        OpenApiExample(
            "Expired",
            value={
                "detail": "This job expired at 2026-01-08T12:00:00Z: its time to live passed; its "
                "result is gone. Submit the operation again if you still need it.",
                "code": "job_gone",
                "id": "8d3c0e4a-5b6f-4c2d-9e1a-0f2b3c4d5e6f",
                "kind": "app.operation",
                "removed_at": "2026-01-08T12:00:00Z",
                "reason": "expired",
            },
            response_only=True,
            status_codes=["410"],
        )
    ],
)


THROTTLED = error_response("Too many requests for this user; wait `Retry-After` seconds.")
PAYLOAD_TOO_LARGE = error_response(
    "The request body is over the configured limit (`API_MAX_BODY_BYTES`, 64 KiB by default)."
)
UNSUPPORTED_MEDIA_TYPE = error_response("Send the body as `application/json`.")


# --- Headers ----------------------------------------------------------------


def response_header(
    name: str, codes: list[int], description: str, *, required: bool = False, schema: Any = str
) -> OpenApiParameter:
    """A response header ``name`` on the responses with status ``codes``."""
    return OpenApiParameter(
        name,
        type=schema,
        location=OpenApiParameter.HEADER,
        response=codes,
        required=required,
        description=description,
    )


RETRY_AFTER_SCHEMA = {"type": "string", "pattern": r"^[0-9]+$"}


def job_document_headers(codes: list[int], *, etag_on_304: bool = False) -> list[OpenApiParameter]:
    """``ETag``, ``Cache-Control`` and ``Retry-After`` on responses carrying a job document."""
    etag_codes = codes + ([304] if etag_on_304 else [])
    return [
        response_header(
            "ETag",
            etag_codes,
            "Strong validator of this job document; send it back in `If-None-Match`.",
            required=True,
        ),
        response_header(
            "Cache-Control",
            etag_codes,
            "`private, no-cache`: clients may keep the document but must revalidate it.",
            required=True,
        ),
        response_header(
            "Retry-After",
            codes,
            "Seconds to wait before polling again; sent while the job is pending or processing.",
            schema=RETRY_AFTER_SCHEMA,
        ),
    ]


RETRY_AFTER_ON_429 = response_header(
    "Retry-After",
    [429],
    "Seconds until the throttle lets this user in again.",
    required=True,
    schema=RETRY_AFTER_SCHEMA,
)
WWW_AUTHENTICATE_ON_401 = response_header("WWW-Authenticate", [401], '`Bearer realm="api"`.', required=True)

JOB_ID = OpenApiParameter(
    "job_id",
    type={"type": "string", "format": "uuid"},
    location=OpenApiParameter.PATH,
    description="The job's `id`. Anything else, or another user's job, is `404`.",
)

IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    type=str,
    location=OpenApiParameter.HEADER,
    description="The `ETag` of the document you have (weak `W/` forms match too): "
    "unchanged jobs answer `304` with no body.",
)


# --- The job document -------------------------------------------------------


class JobProgressSerializer(serializers.Serializer):
    percentage = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField(allow_blank=True, help_text="The handler's last progress message.")


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable: `cancelled`, `timeout`, `worker_lost`, `internal_error`, "
        "or the handler's own code."
    )
    message = serializers.CharField(help_text="For humans; never a traceback.")


# What each job kind documents about itself: apps call ``document_kind`` when
# their API module is imported, so the engine names no app's kinds or codes.
RESULT_SCHEMAS: dict[str, type[serializers.Serializer]] = {}
ERROR_CODES: dict[str, tuple[str, ...]] = {}


def document_kind(
    kind: str,
    *,
    result: type[serializers.Serializer] | None = None,
    error_codes: tuple[str, ...] = (),
    examples: tuple[OpenApiExample, ...] = (),
) -> None:
    """Document a job kind in the job document's schema.

    ``result`` is what a completed job of ``kind`` carries in ``result``;
    ``error_codes`` are the codes its handler fails with (``JobError``);
    ``examples`` are job documents of this kind (see ``job_example``), shown on
    ``GET /api/jobs/{id}/`` after the engine's own.
    """
    if result is not None:
        RESULT_SCHEMAS[kind] = result
    if error_codes:
        ERROR_CODES[kind] = tuple(error_codes)
    POLL_EXAMPLES.extend(examples)


class JobErrorSerializerExtension(OpenApiSerializerExtension):
    """The job error: the engine's codes, and each documented kind's own."""

    target_class = JobErrorSerializer

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "JobError"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if ERROR_CODES:
            per_kind = "; ".join(
                f"`{kind}`: " + ", ".join(f"`{code}`" for code in ERROR_CODES[kind])
                for kind in sorted(ERROR_CODES)
            )
            code = schema["properties"]["code"]
            code["description"] = code["description"].removesuffix(".") + f" ({per_kind})."
        return schema


class JobSerializerExtension(OpenApiSerializerExtension):
    """The job document: ``progress``, ``result`` and ``error`` spelled out."""

    target_class = "jobs.api.serializers.JobSerializer"

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "Job"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["description"] = (
            "A job: what it is, where it stands and how it ended. Poll `url` until `status` is "
            "final, then read `result` (completed) or `error` (failed, cancelled)."
        )
        properties = schema["properties"]
        properties["status"]["description"] = (
            "`pending` and `processing` are active; `completed`, `failed` and `cancelled` are final."
        )
        properties["url"] = {
            "type": "string",
            "format": "uri",
            "readOnly": True,
            "description": "Where to poll this job (the same as the `Location` of the submission).",
        }
        properties["progress"] = auto_schema.resolve_serializer(JobProgressSerializer, direction).ref
        kinds = sorted(RESULT_SCHEMAS)
        per_kind = [auto_schema.resolve_serializer(RESULT_SCHEMAS[kind], direction).ref for kind in kinds]
        described = "; ".join(
            f"`{kind}`: {RESULT_SCHEMAS[kind].__name__.removesuffix('Serializer')}" for kind in kinds
        )
        properties["result"] = {
            "nullable": True,
            "readOnly": True,
            "description": "Null until the job completes; then what its handler returned"
            + (f" ({described})." if described else "."),
            "anyOf": [*per_kind, {"type": "object", "additionalProperties": {}}],
        }
        properties["error"] = {
            "allOf": [auto_schema.resolve_serializer(JobErrorSerializer, direction).ref],
            "nullable": True,
            "readOnly": True,
            "description": "Null unless the job failed or was cancelled.",
        }
        properties["kind"]["description"] = "The operation (its job kind" + (
            f", e.g. `{kinds[0]}`)." if kinds else ")."
        )
        properties["attempts"]["description"] = "Runs started so far (a retried job runs again)."
        properties["cancel_requested"]["description"] = (
            "A cancel was asked for; a processing job stops at its next progress report."
        )
        properties["expires_at"]["description"] = "When a finished job is deleted (its time to live)."
        properties["queue"]["description"] = (
            "The execution queue it waits in (its kind's); a queue may limit how many run at once."
        )
        properties["priority"]["description"] = "Within its queue, higher runs first, then the oldest first."
        properties["run_at"]["description"] = (
            "The start time asked for: the job stays `pending` and does not run before it; null for at once."
        )
        properties["options"] = JOB_OPTIONS_PROPERTY
        return schema


JOB_OPTIONS_PROPERTY = {
    "type": "object",
    "readOnly": True,
    "description": "The options the client chose with `Job-Options`, as applied; `{}` for none.",
    "properties": {
        "timeout": {"type": "integer", "description": "Seconds the job may run."},
        "ttl": {"type": "integer", "description": "Seconds the finished job is kept."},
        "priority": {"type": "integer", "description": "Higher runs first within its queue."},
        "run_at": {"type": "string", "format": "date-time", "description": "Not started before."},
        "callback": {"type": "string", "format": "uri", "description": "Told when the job ends."},
    },
}

# The kind the engine's own examples show: apps document theirs (``document_kind``).
EXAMPLE_KIND = "app.operation"


def job_example(
    status: str = JobStatus.PENDING, *, kind: str = EXAMPLE_KIND, **overrides: Any
) -> dict[str, Any]:
    """A job document of ``kind`` as the API sends it, for the examples in the schema."""
    job_id = "8d3c0e4a-5b7f-4c1e-9a3d-2f6b8e1c4d5a"
    document = {
        "id": job_id,
        "url": f"http://localhost:8000/api/jobs/{job_id}/",
        "kind": kind,
        "status": status,
        "progress": {"percentage": 0, "message": ""},
        "result": None,
        "error": None,
        "attempts": 0,
        "max_attempts": 3,
        "cancel_requested": False,
        "created_at": "2025-01-01T12:00:00Z",
        "started_at": None,
        "finished_at": None,
        "expires_at": None,
    }
    document.update(overrides)
    return document


# Job documents as ``GET /api/jobs/{id}/`` shows them along the way; apps
# add theirs with ``document_kind``.
POLL_EXAMPLES = [
    OpenApiExample(
        "Processing",
        value=job_example(
            "processing",
            progress={"percentage": 40, "message": "Halfway there"},
            attempts=1,
            started_at="2025-01-01T12:00:01Z",
        ),
        response_only=True,
        status_codes=["200"],
    ),
]


def job_document_response(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """An OpenAPI response carrying the job document.

    Documentation only: ``jobs.api.responses.job_response`` is what sends one.
    """
    from jobs.api.serializers import JobSerializer

    return OpenApiResponse(JobSerializer, description=description, examples=list(examples))


def poll_response(description: str) -> OpenApiResponse:
    """The job document as a poll answers it, with every documented kind's examples.

    The list is passed on, not copied: apps' API modules, imported after this
    one, still add their examples before the schema is generated.
    """
    from jobs.api.serializers import JobSerializer

    return OpenApiResponse(JobSerializer, description=description, examples=POLL_EXAMPLES)


# --- Submitting jobs --------------------------------------------------------

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    type={"type": "string", "minLength": 1, "maxLength": 255},
    location=OpenApiParameter.HEADER,
    description="Makes retries safe (IETF draft): the same key and body from the same user returns the "
    "same job with `Idempotent-Replayed: true`; the same key with another body is `422`. "
    "1 to 255 printable characters, for example a UUID; a quoted string is unquoted.",
)
