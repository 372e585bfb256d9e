"""What a handler gets to talk back to its job: ``ctx.progress(...)``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from jobs.exceptions import JobCancelled


class JobContext:
    """The running job, as seen by its handler.

    ``progress()`` writes straight to the job row in autocommit mode, so a
    poller sees it at once. Call it outside any ``transaction.atomic()`` block
    the handler holds: inside one, nobody sees the update before the commit.
    """

    #: True: this code runs in a worker, as a job (see ``InlineJobContext``).
    in_job = True

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        kind: str,
        owner_id: Any,
        attempt: int,
        max_attempts: int,
        lease: timedelta | None = None,
        call: dict[str, Any] | None = None,
    ) -> None:
        self.job_id = job_id
        self.kind = kind
        self.owner_id = owner_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.lease = lease
        # The API request a job-capable action came from (jobs.api.actions).
        self.call = call or {}

    @property
    def is_last_attempt(self) -> bool:
        """True when an unexpected exception now would fail the job for good."""
        return self.attempt >= self.max_attempts

    def progress(self, percentage: int, message: str = "", *, cancellable: bool = True) -> None:
        """Publish progress; raise ``JobCancelled`` if a cancel was requested.

        Pass ``cancellable=False`` past the point of no return (money taken),
        where the handler must finish whatever a client asked.
        """
        from jobs.transitions import report_progress

        recorded = report_progress(
            self.job_id,
            percentage=max(0, min(100, int(percentage))),
            message=message,
            lease=self.lease,
            cancellable=cancellable,
        )
        if not recorded and cancellable and self.cancel_requested():
            raise JobCancelled()

    def cancel_requested(self) -> bool:
        """Return True if someone asked for this job to stop."""
        from jobs.models import Job

        return Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()

    def __repr__(self) -> str:
        return f"<JobContext {self.kind} {self.job_id} attempt {self.attempt}/{self.max_attempts}>"


class InlineJobContext:
    """What ``current_job()`` gives code that runs in a request, not in a job.

    Progress goes nowhere and a cancel can never be requested, so an API
    action can report progress unconditionally and still run inline.
    """

    job_id = None
    kind = ""
    owner_id = None
    attempt = 1
    max_attempts = 1
    is_last_attempt = True
    in_job = False
    call: dict = {}

    def progress(self, percentage: int, message: str = "", *, cancellable: bool = True) -> None:
        """Do nothing: nobody polls a request."""

    def cancel_requested(self) -> bool:
        """Return False: a request cannot be cancelled through the jobs API."""
        return False

    def __repr__(self) -> str:
        return "<InlineJobContext>"


_INLINE = InlineJobContext()
_current: ContextVar[JobContext | None] = ContextVar("jobs_current_job", default=None)


def current_job() -> JobContext | InlineJobContext:
    """Return the job being run, or a context whose ``progress()`` does nothing.

    Lets code shared by a request and a worker publish progress without
    knowing which one runs it: ``current_job().progress(40, "Summing orders")``.
    """
    return _current.get() or _INLINE


@contextmanager
def running(ctx: JobContext) -> Iterator[JobContext]:
    """Make ``ctx`` what ``current_job()`` returns while the block runs."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
