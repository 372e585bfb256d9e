"""Deliveries: when a job ends, one per destination, tried until delivered or out of time.

A delivery keeps its id (the ``webhook-id`` header, so the receiver can drop
duplicates) and its body for every attempt; only the timestamp and the
signature change. An attempt is claimed with one conditional UPDATE, so two
processes never call the receiver at once for the same delivery. The first
attempt is a django-q2 task sent when the job ends; retries are sent by the
reaper (``jobs.recovery.reap_task``) once their backoff has passed, until
``JOBS["WEBHOOK_RETRY_FOR"]`` after the job ended. Nothing here runs inside
the transaction that ends the job: a slow or broken receiver never holds a
job back.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.utils import timezone

from jobs import queue
from jobs.conf import jobs_settings
from jobs.exceptions import WebhookDestinationRefused
from jobs.models import Job
from jobs.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from jobs.webhooks.destinations import check_destination
from jobs.webhooks.sending import post
from jobs.webhooks.signing import sign

logger = logging.getLogger(__name__)

# Statuses worth another attempt: the receiver is down, overloaded or slow.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def deliveries_for_end(
    sender: Any = None, *, job_id: uuid.UUID, status: str, webhooks: bool | None = None, **kwargs: Any
) -> list[uuid.UUID]:
    """Store a delivery for each destination of the ended job and send each at once (``job_finished`` receiver).

    The destinations: the job's own ``callback`` option and its owner's
    endpoint, once each. ``webhooks=False`` (the ending found none) costs
    no query.
    """
    if webhooks is False:
        return []
    job = (
        Job.objects.filter(pk=job_id)
        .annotate(endpoint_url=F("owner__webhook_endpoint__url"))
        .first()
    )
    if job is None:
        return []
    urls = [url for url in ((job.options or {}).get("callback"), job.endpoint_url) if url]
    if not urls:
        return []
    body = job_body(job)
    now = timezone.now()
    created = [
        WebhookDelivery.objects.create(job_id=job.pk, url=url, body=body, created_at=now, next_attempt_at=now).pk
        for url in dict.fromkeys(urls)
    ]
    for pk in created:
        queue.send_webhook(pk)
    return created


def job_body(job: Job) -> str:
    """The JSON body told to receivers: the event type, when, and the job document."""
    from jobs.api.serializers import JobSerializer

    document = JobSerializer(job).data
    call = job.call or {}
    if call.get("host") and document["url"].startswith("/"):
        # No request here: the job's own request says which host the client used.
        document["url"] = f"{'https' if call.get('secure') else 'http'}://{call['host']}{document['url']}"
    event = {
        "type": f"job.{job.status}",
        "timestamp": document["finished_at"],
        "data": document,
    }
    return json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":"))


def due_deliveries(now: datetime | None = None, *, limit: int = 500) -> list[uuid.UUID]:
    """Ids of pending deliveries whose next attempt is due."""
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now or timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def send_due(now: datetime | None = None) -> int:
    """Send a task for each due delivery (the reaper's part); return how many."""
    sent = 0
    for pk in due_deliveries(now):
        try:
            queue.send_webhook(pk)
            sent += 1
        except Exception:
            logger.exception("Could not send webhook delivery %s to the queue", pk)
    return sent


def deliver(delivery_id: uuid.UUID | str) -> str:
    """Make one attempt of a due delivery; return ``delivered``, ``retrying``, ``failed`` or ``skipped``."""
    pk = uuid.UUID(str(delivery_id))
    now = timezone.now()
    # The claim: the next attempt moves past this one's longest duration, so
    # another process finds nothing due meanwhile (and takes over if this one dies).
    hold = now + timedelta(seconds=jobs_settings.WEBHOOK_TIMEOUT * 3 + 30)
    claimed = WebhookDelivery.objects.filter(
        pk=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=hold, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("job").get(pk=pk)
    started = time.monotonic()
    status_code, error, retryable = _attempt(delivery)
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        at=now,
        status_code=status_code,
        error=error[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return _settle(delivery, delivered=not error, retryable=retryable)


def deliver_task(delivery_id: str) -> str:
    """The django-q2 task of one attempt (sent by ``jobs.queue.send_webhook``)."""
    return deliver(delivery_id)


def _attempt(delivery: WebhookDelivery) -> tuple[int | None, str, bool]:
    """Call the receiver once; return its status, an error ("" when delivered) and whether to retry."""
    secret = (
        WebhookEndpoint.objects.filter(owner_id=delivery.job.owner_id)
        .values_list("secret", flat=True)
        .first()
    )
    if not secret:
        return None, "the job's owner has no signing secret (POST /api/webhooks/secret/)", False
    try:
        destination = check_destination(delivery.url)
    except WebhookDestinationRefused as exc:
        # DNS may have moved the host somewhere the server must not call.
        return None, f"refused: {exc.message}", False
    timestamp = int(time.time())
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "jobs-webhooks/1",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=delivery.webhook_id, timestamp=timestamp, body=body),
    }
    status_code, error = post(destination, headers=headers, body=body, timeout=jobs_settings.WEBHOOK_TIMEOUT)
    if status_code is None:
        return None, error, True
    if 200 <= status_code < 300:
        return status_code, "", False
    retryable = status_code >= 500 or status_code in RETRYABLE_STATUSES
    return status_code, f"the receiver answered {status_code}", retryable


def _settle(delivery: WebhookDelivery, *, delivered: bool, retryable: bool) -> str:
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING)
    if delivered:
        rows.update(status=DeliveryStatus.DELIVERED, next_attempt_at=None, finished_at=now)
        return "delivered"
    delay = min(
        float(jobs_settings.WEBHOOK_BACKOFF_MAX),
        float(jobs_settings.WEBHOOK_BACKOFF_BASE) * 2 ** max(0, delivery.attempts - 1),
    )
    # Some jitter, so the deliveries of many jobs that failed together spread out.
    next_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.0))
    deadline = delivery.created_at + timedelta(seconds=jobs_settings.WEBHOOK_RETRY_FOR)
    if not retryable or next_at > deadline:
        rows.update(status=DeliveryStatus.FAILED, next_attempt_at=None, finished_at=now)
        logger.warning("Webhook %s to %s failed for good", delivery.webhook_id, delivery.url)
        return "failed"
    rows.update(next_attempt_at=next_at)
    return "retrying"
