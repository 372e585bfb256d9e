"""OpenAPI documentation of the project's own endpoints: the token login.

Documentation only. Imported by ``project.views`` so the extension below is
registered before drf-spectacular builds ``/api/schema/``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers

from jobs.api.public import BAD_REQUEST_BODY, PAYLOAD_TOO_LARGE, error_response


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Bearer <token>`.")


class ObtainAuthTokenSchema(OpenApiViewExtension):
    """Document DRF's token login, mounted in ``project/urls.py``."""

    target_class = "rest_framework.authtoken.views.ObtainAuthToken"
    match_subclasses = True
    priority = 1  # over drf-spectacular's own extension for this view

    def view_replacement(self) -> Any:
        from rest_framework.authtoken.serializers import AuthTokenSerializer

        @extend_schema(
            tags=["auth"],
            summary="Get an API token",
            description="Exchange a username and password for the user's token (the same token "
            "each time). No authentication: a stale token sent along does not matter.",
            request=AuthTokenSerializer,
            responses={
                200: OpenApiResponse(TokenSerializer, description="The token."),
                400: OpenApiResponse(
                    BAD_REQUEST_BODY,
                    description="Missing fields, a wrong username or password (`non_field_errors`), "
                    "or a body that is not valid JSON.",
                ),
                413: PAYLOAD_TOO_LARGE,
                415: error_response("Send JSON or a form (`application/x-www-form-urlencoded`)."),
            },
        )
        class DocumentedObtainAuthToken(self.target):
            pass

        return DocumentedObtainAuthToken
