"""Project-level API views."""

from typing import Any

from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.parsers import LimitedJSONParser
from project.throttling import LoginAddressThrottle, LoginFailureThrottle, LoginThrottled


class ObtainTokenView(ObtainAuthToken):
    """``POST /api/auth/token/`` with username and password: ``{"token": ...}``.

    No authentication classes, so a stale token sent along cannot block a
    login; the same JSON limits as the rest of the API.
    """

    authentication_classes: list = []
    parser_classes = [LimitedJSONParser, FormParser]
    # Password guessing: 429 per client address and per username's failures
    # (project/throttling.py), checked before any password hash is computed.
    throttle_classes = [LoginAddressThrottle, LoginFailureThrottle]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Issue the token; a refused sign-in counts against the posted username."""
        try:
            return super().post(request, *args, **kwargs)
        except serializers.ValidationError:
            LoginFailureThrottle().record_failure(request, self)
            raise

    def throttled(self, request: Request, wait: float | None) -> None:
        """Refuse with 429, ``detail``, ``code`` and ``Retry-After``."""
        raise LoginThrottled(wait)
