"""Completion webhooks through a real `manage.py qcluster`: the job ends, the cluster delivers and retries."""

from __future__ import annotations

import pytest
from django.test import override_settings

import jobs
from jobs.models import JobStatus
from jobs.webhook_models import DeliveryStatus, WebhookDelivery
from jobs.webhooks.delivery import send_due
from jobs.webhooks.services import webhook_endpoint_set, webhook_secret_rotate
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.processes import wait_for
from tests.support.webhook_receiver import receiver  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.django_db(transaction=True),
]


def test_a_cluster_delivers_a_job_end_to_a_receiver_that_fails_twice_first(launcher, user, receiver):
    receiver.fail_first = 2
    with override_settings(JOBS={"WEBHOOK_ALLOWED_HOSTS": [receiver.host]}):
        receiver.secret = webhook_secret_rotate(owner=user)
        webhook_endpoint_set(owner=user, url=receiver.url)
    launcher.qcluster(
        JOBS_HANDLER_MODULES="tests.support.handlers",
        JOBS_WEBHOOK_ALLOWED_HOSTS=receiver.host,
        JOBS_WEBHOOK_BACKOFF_BASE="0.2",
    )
    job = jobs.submit("tests.noop", {"n": 1}, owner=user)

    def delivered():
        # What the reaper does every ~30 s: send the retries that are due (here, at once).
        send_due()
        return WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).first()

    delivery = wait_for(delivered, timeout=60, interval=0.2, what="the webhook to be delivered")
    requests = receiver.wait_for(3)
    assert [request.answered for request in requests] == [500, 500, 204]
    assert all(request.signature_ok for request in requests)
    assert {request.headers["webhook-id"] for request in requests} == {delivery.webhook_id}
    assert requests[-1].event["data"]["id"] == str(job.pk)
    assert requests[-1].event["data"]["status"] == JobStatus.COMPLETED
    assert delivery.job_id == job.pk
    assert [attempt.status_code for attempt in delivery.attempt_log.all()] == [500, 500, 204]
