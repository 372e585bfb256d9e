"""Job-Options on job requests: checked against the kind's bounds, applied, shown in the job document."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs import queue
from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.webhook_models import WebhookDelivery
from jobs.webhooks.delivery import deliver, due_deliveries
from purchases.api.schema import PURCHASE_KIND, REPORT_KIND
from purchases.conf import purchases_setting
from tests.integration.api_helpers import purchase_body
from tests.support.webhook_receiver import start_receiver

REPORT = "/api/reports/sales/"
PURCHASE = "/api/purchases/"
ASYNC = {"HTTP_PREFER": "respond-async"}


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    def send(url, body, options=None, **headers):
        if options is not None:
            headers["HTTP_JOB_OPTIONS"] = options
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(url, data=json.dumps(body), content_type="application/json", **headers)

    return send


@pytest.fixture
def product(make_product):
    return make_product(stock=5)


@pytest.mark.django_db
def test_the_purchase_takes_timeout_and_ttl(post, product):
    answer = post(PURCHASE, purchase_body(product.pk), "timeout=30, ttl=3600")
    assert answer.status_code == 202, answer.content
    assert answer.json()["options"] == {"timeout": 30, "ttl": 3600}
    job = Job.objects.get()
    assert job.options == {"timeout": 30, "ttl": 3600}
    assert job.kind == PURCHASE_KIND


@pytest.mark.django_db
def test_a_report_job_takes_priority_and_run_at(post, user):
    when = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = post(REPORT, {}, f'priority=7, run-at="{stamp}"', **ASYNC)
    assert answer.status_code == 202, answer.content
    document = answer.json()
    assert document["options"] == {"priority": 7, "run_at": stamp}
    assert document["status"] == "pending"
    job = Job.objects.get()
    assert job.kind == REPORT_KIND
    assert job.priority == 7
    assert job.run_at == when
    assert job.available_at == when


@pytest.mark.django_db
def test_run_at_also_takes_a_date_item(post):
    seconds = int((timezone.now() + timedelta(hours=1)).timestamp())
    answer = post(REPORT, {}, f"run-at=@{seconds}", **ASYNC)
    assert answer.status_code == 202, answer.content
    assert parse_datetime(answer.json()["options"]["run_at"]).timestamp() == seconds


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "why"),
    [
        ("colour=blue", "unknown option 'colour'"),
        ("timeout=30;x=1", "parameters"),
        ("ttl=(1 2)", "inner lists"),
        ("timeout=", "expected a value"),
        ("timeout=30 ttl=60", "expected ','"),
        ("ttl=59", "ttl must be a whole number of seconds from 60 to 604800"),
        ("ttl=604801", "from 60 to 604800"),
        ("ttl=1.5", "whole number"),
        ("ttl=?1", "whole number"),
        ("ttl", "whole number"),
        ("timeout=0", "from 1 to"),
        ("priority=11", "priority must be a whole number from -32768 to 10"),
        ('priority="1"', "whole number"),
        ("run-at=tomorrow", "RFC 3339"),
        ('run-at="2026-12-01T09:00:00"', "with its offset"),
        ('run-at="2020-01-01T00:00:00Z"', "between now and 2592000 seconds ahead"),
        ('run-at="2999-01-01T00:00:00Z"', "between now and 2592000 seconds ahead"),
        ("callback=https", "a URL in a string"),
        ("ttl=60, " * 300, "longer than 2000 characters"),
    ],
)
def test_bad_options_are_a_400_naming_the_bound_and_nothing_is_created(post, product, options, why):
    for url, body, headers in ((REPORT, {}, ASYNC), (PURCHASE, purchase_body(product.pk), {})):
        answer = post(url, body, options, **headers)
        assert answer.status_code == 400, (url, answer.content)
        assert answer.json()["code"] == "invalid_job_options"
        assert why in answer.json()["detail"]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_the_timeout_cannot_exceed_the_kinds_own(post, product):
    limit = purchases_setting("TIMEOUT")
    answer = post(PURCHASE, purchase_body(product.pk), f"timeout={limit + 1}")
    assert answer.status_code == 400
    assert f"from 1 to {limit}" in answer.json()["detail"]
    assert post(PURCHASE, purchase_body(product.pk), f"timeout={limit}").status_code == 202


@pytest.mark.django_db
def test_staff_may_go_above_the_priority_ceiling(post, user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    answer = post(REPORT, {}, "priority=500", **ASYNC)
    assert answer.status_code == 202, answer.content
    assert Job.objects.get().priority == 500


@pytest.mark.django_db
def test_the_ceiling_is_a_setting(post):
    with override_settings(JOBS={"OPTION_PRIORITY_MAX": 3}):
        answer = post(REPORT, {}, "priority=4", **ASYNC)
    assert answer.status_code == 400
    assert "from -32768 to 3" in answer.json()["detail"]


@pytest.mark.django_db
def test_inline_requests_ignore_the_header(post):
    answer = post(REPORT, {}, "colour=blue")
    assert answer.status_code == 200
    assert not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("callback", "why"),
    [
        ("https://10.0.0.8/hooks", "private"),
        ("https://127.0.0.1:9000/hooks", "loopback"),
        ("https://169.254.169.254/", "link-local"),
        ("http://93.184.215.14/hooks", "https"),
    ],
)
def test_an_internal_callback_is_refused_at_submit(api, post, callback, why):
    api.post("/api/webhooks/secret/")
    answer = post(REPORT, {}, f'callback="{callback}"', **ASYNC)
    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook_destination_refused"
    assert why in answer.json()["detail"]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_callback_needs_a_signing_secret(post):
    answer = post(REPORT, {}, 'callback="https://93.184.215.14/hooks"', **ASYNC)
    assert answer.status_code == 400
    assert "/api/webhooks/secret/" in answer.json()["detail"]


@pytest.mark.django_db
def test_the_callback_is_told_when_the_job_ends(api, post, monkeypatch, django_capture_on_commit_callbacks):
    receiver, server = start_receiver()
    monkeypatch.setattr(queue, "send_webhook", lambda pk: "task")
    try:
        with override_settings(JOBS={"WEBHOOK_ALLOWED_HOSTS": [receiver.host]}):
            receiver.secret = api.post("/api/webhooks/secret/").json()["secret"]
            answer = post(REPORT, {}, f'callback="{receiver.url}", ttl=120', **ASYNC)
            assert answer.status_code == 202, answer.content
            job = Job.objects.get()
            with django_capture_on_commit_callbacks(execute=True):
                assert run_job(str(job.pk)) == JobStatus.COMPLETED
            (pk,) = due_deliveries()
            assert deliver(pk) == "delivered"
        (request,) = receiver.wait_for(1)
    finally:
        server.shutdown()
        server.server_close()
    assert request.signature_ok
    assert request.event["data"]["id"] == str(job.pk)
    assert request.event["data"]["options"] == {"callback": receiver.url, "ttl": 120}
    assert WebhookDelivery.objects.get().url == receiver.url
    # The ttl option set how long the finished job is kept.
    job.refresh_from_db()
    assert job.expires_at - job.finished_at == timedelta(seconds=120)
