"""The one place where the engine's exceptions become HTTP responses."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from jobs.exceptions import (
    IdempotencyKeyConflict,
    InvalidJobState,
    JobError,
    JobsException,
    UnknownJobKind,
)

STATUS_BY_EXCEPTION: list[tuple[type[JobsException], int]] = [
    (InvalidJobState, status.HTTP_409_CONFLICT),
    (IdempotencyKeyConflict, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (UnknownJobKind, status.HTTP_404_NOT_FOUND),
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
            return Response({"detail": exc.message, "code": exc.code}, status=status_code)
    return drf_exception_handler(exc, context)
