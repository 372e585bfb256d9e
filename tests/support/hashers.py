"""A password hasher for the tests: Django's default at one iteration instead of a million."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Hash in microseconds rather than half a second (most tests create a user or two).

    The algorithm and format stay ``pbkdf2_sha256``, so the servers and
    workers the tests start, on the project's settings, still check these
    hashes (and upgrade them on a first sign-in, as after a settings change).
    """

    iterations = 1
