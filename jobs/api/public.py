"""What an app's DRF views may use of the jobs API, in one place.

Besides ``jobs`` itself (``job``, ``submit``, ``runs_as_job``, ...), this is
the only ``jobs`` module an app imports: the job document, a submission's
202 answer, the throttle, and the OpenAPI helpers that document job-capable
endpoints and their kinds. Everything else under ``jobs.api`` is the
engine's own and may change; ``tests/unit/test_import_contract.py`` holds
apps to this.

Import it from views and API modules, not at settings time: it needs the
app registry (the job document is a model serializer).
"""

from __future__ import annotations

from jobs.api.responses import job_accepted_response
from jobs.api.schema import (
    BAD_REQUEST,
    BAD_REQUEST_BODY,
    FORBIDDEN_CSRF,
    PAYLOAD_TOO_LARGE,
    THROTTLED,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    WWW_AUTHENTICATE_ON_401,
    document_kind,
    error_response,
    job_document_response,
    job_example,
)
from jobs.api.schema_async import job_capable_schema
from jobs.api.serializers import JobSerializer
from jobs.api.throttling import JobsRateThrottle
from jobs.api.views import idempotency_key_from

__all__ = [
    "BAD_REQUEST",
    "BAD_REQUEST_BODY",
    "FORBIDDEN_CSRF",
    "PAYLOAD_TOO_LARGE",
    "THROTTLED",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "WWW_AUTHENTICATE_ON_401",
    "JobSerializer",
    "JobsRateThrottle",
    "document_kind",
    "error_response",
    "idempotency_key_from",
    "job_accepted_response",
    "job_capable_schema",
    "job_document_response",
    "job_example",
]
