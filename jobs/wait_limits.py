"""Per-user cap on concurrent waits: ``Prefer: wait``, ``?wait=`` long polls, event streams.

Each wait holds one of the user's ``JOBS["MAX_WAITS_PER_USER"]`` slots; one
more is refused with ``429`` and ``Retry-After``. A slot is a cache key
(``JOBS["WAIT_SLOTS_CACHE"]``) written with ``add`` (atomic: Redis ``SET NX``,
or an ``os.link`` in ``SlotFileCache``), so every web process of a
deployment counts against the same slots, and it carries an expiry (its
lease): a process that crashes mid-wait leaks its slots only until their
leases run out. Streams renew theirs at each heartbeat.

Why the cache and not the database: taking and giving back a slot must not
cost the database connection whose scarcity the cap protects.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from django.db import connection
from django.http import JsonResponse
from rest_framework import exceptions

from jobs.conf import jobs_settings

# Seconds a slot outlives the wait it was taken for (clock skew, a slow answer).
LEASE_MARGIN = 30


class TooManyWaits(exceptions.Throttled):
    """429 for a wait over the user's cap: ``detail``, ``code`` and ``Retry-After``."""

    def __init__(self, limit: int) -> None:
        self.wait = retry_after()
        detail = (
            f"You already have {limit} waiting requests or event streams open, the most allowed. "
            f"Close one, or poll without waiting; retry in {self.wait} seconds."
        )
        # A dict detail is the body as it is; DRF adds Retry-After from `wait`.
        exceptions.APIException.__init__(self, {"detail": detail, "code": "too_many_waits"}, "too_many_waits")


def retry_after() -> int:
    """Whole seconds a refused client should wait before trying again (at least 1)."""
    return max(1, math.ceil(float(jobs_settings.RETRY_AFTER)))


def too_many_waits_response(exc: TooManyWaits) -> JsonResponse:
    """The 429 of ``exc`` for the async views, which answer without DRF's exception handler."""
    response = JsonResponse(exc.detail, status=exc.status_code)
    response["Retry-After"] = str(exc.wait)
    return response


@dataclass
class WaitSlot:
    """One of a user's wait slots, held until ``release``; ``renew`` extends its lease."""

    key: str
    token: str
    lease: float

    def renew(self) -> None:
        """Extend the lease by ``lease`` seconds from now (a long stream's heartbeat)."""
        cache = _cache()
        if not cache.touch(self.key, self.lease):
            # Expired meanwhile (a stalled process): take it again if still free.
            cache.add(self.key, self.token, self.lease)

    def release(self) -> None:
        """Give the slot back (unless its lease ran out and someone else holds it now)."""
        cache = _cache()
        if cache.get(self.key) == self.token:
            cache.delete(self.key)


def wait_slot_acquire(*, user: Any, lease: float) -> WaitSlot | None:
    """Take one of ``user``'s wait slots for ``lease`` seconds; raise ``TooManyWaits`` if none is free.

    Anonymous users (the views refuse them before waiting) and a cap of 0
    are not counted: None.
    """
    limit = int(jobs_settings.MAX_WAITS_PER_USER)
    user_pk = getattr(user, "pk", None)
    if limit <= 0 or user_pk is None:
        return None
    cache = _cache()
    keys = [_slot_key(user_pk, number) for number in range(limit)]
    taken = cache.get_many(keys)
    free = [key for key in keys if key not in taken]
    # A random order: concurrent requests of one user rarely race for one key.
    random.shuffle(free)
    token = secrets.token_hex(8)
    lease = float(lease) + LEASE_MARGIN
    for key in free:
        if cache.add(key, token, lease):
            return WaitSlot(key=key, token=token, lease=lease)
    raise TooManyWaits(limit)


@contextmanager
def wait_slot(*, user: Any, lease: float) -> Iterator[WaitSlot | None]:
    """Hold one of ``user``'s wait slots for the block (see ``wait_slot_acquire``)."""
    slot = wait_slot_acquire(user=user, lease=lease)
    try:
        yield slot
    finally:
        if slot is not None:
            slot.release()


def _cache() -> Any:
    return caches[jobs_settings.WAIT_SLOTS_CACHE]


def _slot_key(user_pk: Any, number: int) -> str:
    # Keyed by database too: user ids repeat between databases sharing a cache
    # (test databases, several sites on one Redis).
    database = hashlib.blake2b(
        f"{connection.vendor}:{connection.settings_dict.get('NAME')}".encode(), digest_size=6
    ).hexdigest()
    return f"jobs:waits:{database}:{user_pk}:{number}"


class SlotFileCache(FileBasedCache):
    """Django's file cache, with an ``add`` that is atomic between processes.

    The stock ``add`` checks, then writes: two processes could both take a
    slot. Here the entry is written to a temporary file and linked into
    place; ``os.link`` fails if another process got there first. For web
    processes on one machine without Redis.
    """

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Store ``value`` unless ``key`` holds a live entry; True if stored."""
        self._createdir()
        fname = self._key_to_file(key, version)
        fd, tmp_path = tempfile.mkstemp(dir=self._dir)
        try:
            with open(fd, "wb") as handle:
                self._write_content(handle, timeout, value)
            for _ in range(2):
                try:
                    os.link(tmp_path, fname)
                    return True
                except FileExistsError:
                    # has_key deletes an expired entry: then try once more.
                    if self.has_key(key, version):
                        return False
            return False
        finally:
            os.remove(tmp_path)
