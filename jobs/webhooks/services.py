"""A user's webhook settings as the API changes them: the signing secret and the default endpoint."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from jobs.exceptions import WebhookDestinationRefused
from jobs.webhook_models import WebhookEndpoint
from jobs.webhooks.destinations import check_destination
from jobs.webhooks.signing import new_secret

NO_SECRET = (
    "Create your webhook signing secret first (POST /api/webhooks/secret/): every delivery is signed with it."
)


def webhook_secret_rotate(*, owner: Any) -> str:
    """Create or replace ``owner``'s signing secret; return it (the only time it is shown)."""
    secret = new_secret()
    now = timezone.now()
    WebhookEndpoint.objects.update_or_create(
        owner=owner, defaults={"secret": secret, "secret_created_at": now, "updated_at": now}
    )
    return secret


def webhook_endpoint_set(*, owner: Any, url: str) -> WebhookEndpoint:
    """Make ``url`` the destination of all ``owner``'s job ends ("" for none); refuse a forbidden one."""
    if url:
        webhook_destination_check(owner=owner, url=url)
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        owner=owner, defaults={"url": url, "updated_at": timezone.now()}
    )
    return endpoint


def webhook_endpoint_of(owner: Any) -> WebhookEndpoint:
    """``owner``'s webhook settings (unsaved and empty if there are none)."""
    return WebhookEndpoint.objects.filter(owner=owner).first() or WebhookEndpoint(owner=owner)


def webhook_destination_check(*, owner: Any, url: str) -> str:
    """Return ``url`` if ``owner`` may have job ends sent there; raise ``WebhookDestinationRefused`` if not."""
    check_destination(url)
    if not WebhookEndpoint.objects.filter(owner=owner).exclude(secret="").exists():
        raise WebhookDestinationRefused(NO_SECRET)
    return url
