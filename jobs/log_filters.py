"""Logging filters for the worker cluster."""

from __future__ import annotations

import logging


class DropPerTaskInfo(logging.Filter):
    """Drop django-q2's INFO lines about each task (enqueued, processing, processed).

    The job row and its timeline already say all of that; writing two log
    lines per job cost about a tenth of a worker's time. Start-up, shutdown,
    warnings and errors pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = str(record.msg)
        return not (
            message.startswith(("Processed '", "Enqueued ["))
            or (" processing " in message and record.funcName == "worker")
        )
