"""The API's one exception handler: engine exceptions and Django's refusals become JSON.

Project-wide (settings' ``EXCEPTION_HANDLER`` answers for every app's views),
so it lives with the project, not in the engine.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from jobs.exceptions import (
    IdempotencyKeyConflict,
    JobGone,
    InvalidJobOptions,
    InvalidJobState,
    JobError,
    JobsException,
    UnknownJobKind,
    WebhookDestinationRefused,
)

STATUS_BY_EXCEPTION: list[tuple[type[JobsException], int]] = [
    (InvalidJobState, status.HTTP_409_CONFLICT),
    (IdempotencyKeyConflict, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (UnknownJobKind, status.HTTP_404_NOT_FOUND),
    (JobGone, status.HTTP_410_GONE),
    (InvalidJobOptions, status.HTTP_400_BAD_REQUEST),
    (WebhookDestinationRefused, status.HTTP_400_BAD_REQUEST),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map ``JobsException`` subclasses to statuses; leave the rest to DRF."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is briefly away (restart, failover): tell pollers to
        # come back, in JSON, instead of an HTML 500.
        return Response(
            {"detail": "The service is briefly unavailable. Retry shortly.", "code": "unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, JobError):
        # A job-capable action refused in the request (run inline): the same
        # code and message a job would report, as a 422.
        return Response(
            {"detail": exc.message, "code": exc.code},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    for exc_class, status_code in STATUS_BY_EXCEPTION:
        if isinstance(exc, exc_class):
            body = {"detail": exc.message, "code": exc.code, **getattr(exc, "fields", {})}
            return Response(body, status=status_code)
    if isinstance(exc, SuspiciousOperation):
        # Raised by Django while DRF reads the body (over DATA_UPLOAD_MAX_MEMORY_SIZE,
        # too many fields): DRF would re-raise it and Django answer in HTML.
        detail, code, status_code = request_error(exc)
        return Response({"detail": detail, "code": code}, status=status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        # DRF gives {"detail"} alone; the API promises a code with every detail.
        response.data.setdefault("code", error_code(exc))
    return response


def error_code(exc: Exception) -> str:
    """The machine-readable code of an exception DRF turns into ``{"detail"}``."""
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    if isinstance(exc, APIException):
        return getattr(exc.detail, "code", None) or exc.default_code
    return "error"


def request_error(exc: SuspiciousOperation) -> tuple[str, str, int]:
    """``(detail, code, status)`` for a request Django refused while reading it.

    Messages never echo the request (a Host header is attacker input).
    """
    if isinstance(exc, RequestDataTooBig):
        return (
            f"The request body is over the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE}-byte limit.",
            # The code of the JSON parser's own 413 (project.parsers.RequestTooLarge).
            "request_too_large",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DisallowedHost):
        return (
            "The Host header names a host this server does not serve.",
            "invalid_host",
            status.HTTP_400_BAD_REQUEST,
        )
    return ("The request is malformed.", "bad_request", status.HTTP_400_BAD_REQUEST)
