"""``job_finished``: sent once when a job ends, for in-process integrations.

Receivers get ``sender=Job`` and keyword arguments ``job_id``, ``kind``,
``status`` (``completed``, ``failed`` or ``cancelled``) and ``webhooks``
(whether the job has a webhook destination, or None when not known). It is sent after
the transaction that ended the job commits, in the process that ended it (a
worker, the reaper, a web process for a cancel), so a receiver sees the
finished row. A receiver that raises is logged and does not disturb the
job or the other receivers; slow work belongs in a job of its own.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

job_finished = Signal()


def announce_end(*, job_id: uuid.UUID, kind: str, status: str, webhooks: bool | None = None) -> None:
    """Send ``job_finished`` for this job once the current transaction commits.

    ``webhooks`` says whether the job has a webhook destination, when the
    ending statement already found out (None: not known).
    """
    transaction.on_commit(lambda: _send(job_id, kind, status, webhooks))


def _send(job_id: uuid.UUID, kind: str, status: str, webhooks: bool | None) -> None:
    from jobs.models import Job

    sent = job_finished.send_robust(sender=Job, job_id=job_id, kind=kind, status=status, webhooks=webhooks)
    for receiver, outcome in sent:
        if isinstance(outcome, Exception):
            logger.error(
                "job_finished receiver %r failed for job %s", receiver, job_id, exc_info=outcome
            )
