"""Project-level API views, and the error pages: JSON under ``/api/``, Django's HTML elsewhere."""

from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response

from project import schema  # noqa: F401 - registers the token endpoint's OpenAPI documentation
from project.errors import request_error
from project.parsers import LimitedJSONParser
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


API_PREFIX = "/api/"

# Django calls these (settings.DEBUG off) for errors raised outside DRF's
# views: a bad Host header in middleware, a body Django refused to read, an
# unknown URL. API clients get the same {"detail", "code"} as from DRF.


def _api_error(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: JSON under ``/api/`` (413 for a body over the limit), else Django's page."""
    if request.path.startswith(API_PREFIX):
        if isinstance(exception, SuspiciousOperation):
            return _api_error(*request_error(exception))
        return _api_error("The request is malformed.", "bad_request", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler403``: JSON under ``/api/``, else Django's page."""
    if request.path.startswith(API_PREFIX):
        return _api_error("You do not have permission to perform this action.", "permission_denied", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: unknown API paths answer JSON, like every other API error."""
    if request.path.startswith(API_PREFIX):
        return _api_error("Not found.", "not_found", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: JSON under ``/api/``, no detail of the failure; else Django's page."""
    if request.path.startswith(API_PREFIX):
        return _api_error("Server error. Try again later.", "server_error", 500)
    return defaults.server_error(request)
