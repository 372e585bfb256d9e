"""Stopping child processes that each lead their own process group.

Shared by ``manage.py serve``, the benchmarks under ``bench/`` and the tests. No Django
imports: scripts call it before (or without) setting Django up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable


def stop_process_group(child: subprocess.Popen, *, grace: float, sig: int = signal.SIGTERM) -> int | None:
    """Signal ``child`` (``sig``), wait up to ``grace`` seconds, then SIGKILL its group; its exit status.

    The one-child form of ``stop_process_groups``, for tests and benchmarks.
    """
    if child.poll() is None:
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(child)
    return child.returncode


def stop_process_groups(
    children: Iterable[subprocess.Popen], *, grace: float
) -> list[subprocess.Popen]:
    """SIGTERM each main process, wait up to ``grace`` seconds in all, then SIGKILL each group.

    Signalling only the main process lets a django-q2 cluster stop its own
    workers (signalling its whole group at once can leave it hung); the
    final SIGKILL to each group removes whatever outlived its main process.
    Return the children that were still running when the grace period ended.
    """
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    overran = []
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            overran.append(child)
    for child in children:
        _kill_group(child)
    return overran


def _kill_group(child: subprocess.Popen) -> None:
    # Whatever outlived the main process (workers, threads' children) goes too.
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
