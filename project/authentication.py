"""API authentication: DRF tokens sent as ``Authorization: Bearer <token>``."""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the standard ``Bearer`` keyword."""

    keyword = "Bearer"

