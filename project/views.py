"""Project-level API views."""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser

from jobs.api.parsers import LimitedJSONParser


class ObtainTokenView(ObtainAuthToken):
    """``POST /api/auth/token/`` with username and password: ``{"token": ...}``.

    No authentication classes, so a stale token sent along cannot block a
    login; the same JSON limits as the rest of the API.
    """

    authentication_classes: list = []
    parser_classes = [LimitedJSONParser, FormParser]
