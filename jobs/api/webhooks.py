"""The user's webhook settings: create or rotate the signing secret, set the default endpoint."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api import schema as docs
from jobs.api.throttling import JobsRateThrottle
from jobs.webhooks.services import webhook_endpoint_of, webhook_endpoint_set, webhook_secret_rotate


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The signing secret, `whsec_` and base64: shown this once.")
    created_at = serializers.DateTimeField()


class WebhookEndpointSerializer(serializers.Serializer):
    url = serializers.CharField(
        allow_blank=True,
        max_length=2000,
        help_text="Called when any of your jobs ends (an https URL); empty: none.",
    )
    has_secret = serializers.BooleanField(read_only=True, help_text="Whether you have a signing secret.")
    secret_created_at = serializers.DateTimeField(read_only=True, allow_null=True)


class WebhookSecretView(APIView):
    """``POST``: a new signing secret, shown once."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    @extend_schema(
        tags=["webhooks"],
        operation_id="webhooks_secret_create",
        summary="Create or rotate your webhook signing secret",
        description="Answers a new `whsec_...` secret and replaces the old one at once: deliveries "
        "from now on are signed with it (Standard Webhooks, `webhook-signature: v1,...`). The "
        "secret is shown only in this answer, never again; rotate it if you lose it. No request body.",
        request=None,
        parameters=[docs.RETRY_AFTER_ON_429, docs.WWW_AUTHENTICATE_ON_401],
        responses={
            201: OpenApiResponse(WebhookSecretSerializer, description="The new secret."),
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            429: docs.THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        secret = webhook_secret_rotate(owner=request.user)
        endpoint = webhook_endpoint_of(request.user)
        return Response(
            WebhookSecretSerializer({"secret": secret, "created_at": endpoint.secret_created_at}).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class WebhookEndpointView(APIView):
    """``GET`` or ``PUT`` the URL called when any of the user's jobs ends."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    @extend_schema(
        tags=["webhooks"],
        operation_id="webhooks_endpoint_retrieve",
        summary="Get your webhook endpoint",
        parameters=[docs.RETRY_AFTER_ON_429, docs.WWW_AUTHENTICATE_ON_401],
        responses={200: WebhookEndpointSerializer, 401: docs.UNAUTHORIZED, 429: docs.THROTTLED},
    )
    def get(self, request: Request) -> Response:
        return Response(_document(webhook_endpoint_of(request.user)))

    @extend_schema(
        tags=["webhooks"],
        operation_id="webhooks_endpoint_update",
        summary="Set your webhook endpoint",
        description="Every job of yours that ends is then sent there (besides a job's own "
        "`Job-Options: callback=...`). An https URL whose host is public; loopback, private and "
        "link-local addresses are refused unless the server allows the host. Needs a signing "
        "secret first. An empty `url` stops the deliveries.",
        request=WebhookEndpointSerializer,
        examples=[OpenApiExample("Set", value={"url": "https://example.com/hooks/jobs"}, request_only=True)],
        parameters=[docs.RETRY_AFTER_ON_429, docs.WWW_AUTHENTICATE_ON_401],
        responses={
            200: WebhookEndpointSerializer,
            400: OpenApiResponse(
                docs.BAD_REQUEST_BODY,
                description="Field errors (`url` missing or too long), or a destination the server does "
                "not call or no signing secret yet (`webhook_destination_refused`).",
            ),
            401: docs.UNAUTHORIZED,
            403: docs.FORBIDDEN_CSRF,
            429: docs.THROTTLED,
        },
    )
    def put(self, request: Request) -> Response:
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_set(owner=request.user, url=serializer.validated_data["url"])
        return Response(_document(endpoint))


def _document(endpoint) -> dict:
    return WebhookEndpointSerializer(
        {
            "url": endpoint.url,
            "has_secret": bool(endpoint.secret),
            "secret_created_at": endpoint.secret_created_at,
        }
    ).data
