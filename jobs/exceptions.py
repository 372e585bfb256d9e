"""The jobs engine's exceptions.

Each class's docstring is its default message. ``JobError`` is what a
handler raises to fail a job for a business reason; the others are raised by
the engine's services and mapped to HTTP statuses in one place
(the project's API exception handler, ``project.errors``).
"""

from __future__ import annotations

from typing import Any


class JobsException(Exception):
    """Something went wrong in the jobs engine."""

    code = "jobs_error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class JobError(JobsException):
    """The job failed."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    def as_dict(self) -> dict[str, Any]:
        """Return the error as stored on the job and shown to its client."""
        return {"code": self.code, "message": self.message}


class JobCancelled(JobsException):
    """The job was cancelled before it finished."""

    code = "cancelled"


class JobTimeout(JobsException):
    """The job ran longer than its kind's timeout."""

    code = "timeout"


class UnknownJobKind(JobsException, LookupError):
    """No job handler is registered under this kind."""

    code = "unknown_kind"


class InvalidJobState(JobsException):
    """The job is not in a state that allows this."""

    code = "invalid_state"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class IdempotencyKeyConflict(JobsException):
    """This Idempotency-Key was already used with a different request body."""

    code = "idempotency_key_reused"


class InvalidJobOptions(JobsException):
    """The Job-Options header is malformed, names an unknown option, or a value is out of bounds."""

    code = "invalid_job_options"


class WebhookDestinationRefused(JobsException):
    """This webhook destination is not allowed: use a public https URL."""

    code = "webhook_destination_refused"


class JobGone(JobsException):
    """This job was removed; its result is gone."""

    code = "job_gone"

    def __init__(self, message: str | None = None, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        # Said in the answer's body besides detail and code (when, why).
        self.fields = dict(fields or {})
