"""API authentication: DRF tokens sent as ``Authorization: Bearer <token>``."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.base import ModelState
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

# token key -> (valid until, user, token), per process.
_recent: dict[str, tuple[float, Any, Token]] = {}
_RECENT_MAX = 10_000


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the standard ``Bearer`` keyword.

    A client polling a job sends the same token every second or so: the
    token and its user are remembered for ``API_TOKEN_CACHE_SECONDS`` (5 s),
    which spares most polls one of their two queries. Deleting the token or
    saving its user forgets it at once in this process; other processes take
    at most that long to notice. 0 turns the cache off.
    """

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, Token] | None:
        """The user of a well-formed ``Bearer`` header; DRF's own answer for anything else.

        DRF reads the header through ``request.headers``, which first builds
        a dictionary of every header: a tenth of what the rest of a cached
        poll costs. The common case reads it from ``META`` directly, and
        takes the same steps DRF would.
        """
        header = request.META.get("HTTP_AUTHORIZATION")
        if isinstance(header, str) and header.isascii():
            parts = header.encode().split()  # bytes.split(), as DRF's: ASCII whitespace only
            if len(parts) == 2 and parts[0].lower() == self.keyword.lower().encode():
                return self.authenticate_credentials(parts[1].decode())
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        ttl = float(getattr(settings, "API_TOKEN_CACHE_SECONDS", 5))
        if ttl <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = _recent.get(key)
        if hit is not None and hit[0] > now:
            # A copy: a request may change its user object; others must not see it.
            return _copy_user(hit[1]), hit[2]
        user, token = super().authenticate_credentials(key)
        if len(_recent) >= _RECENT_MAX:
            _recent.clear()
        _recent[key] = (now + ttl, _copy_user(user), token)
        return user, token


def _copy_user(user: Any) -> Any:
    """A shallow copy of a user row, with its own state and no cached relations.

    ``copy.copy`` goes through pickling's ``__reduce_ex__`` and costs a
    tenth of a cached poll; a model instance is its ``__dict__``.
    """
    clone = object.__new__(type(user))
    clone.__dict__.update(user.__dict__)
    state = ModelState()
    state.db, state.adding = user._state.db, user._state.adding
    clone._state = state
    return clone


def _forget_token(sender: Any, instance: Token, **kwargs: Any) -> None:
    _recent.pop(instance.key, None)


def _forget_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    for key in [key for key, (_, user, _) in _recent.items() if user.pk == instance.pk]:
        _recent.pop(key, None)


post_delete.connect(_forget_token, sender=Token, dispatch_uid="project.forget_token")
post_save.connect(_forget_user, sender=get_user_model(), dispatch_uid="project.forget_user_save")
post_delete.connect(_forget_user, sender=get_user_model(), dispatch_uid="project.forget_user_delete")
