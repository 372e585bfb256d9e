"""The Idempotency-Key header on POST /api/purchases/."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from tests.integration.api_helpers import post_json, purchase_body

pytestmark = pytest.mark.django_db

URL = "/api/purchases/"


@pytest.fixture
def product(make_product):
    return make_product(stock=10)


@pytest.fixture
def submit(api, django_capture_on_commit_callbacks):
    def post(body, key=None, client=None):
        headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
        return post_json(client or api, URL, body, django_capture_on_commit_callbacks, **headers)

    return post


def test_same_key_and_body_replays_the_job(submit, product, fake_queue):
    first = submit(purchase_body(product.pk), key="order-1")
    second = submit(purchase_body(product.pk), key="order-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second["Location"] == first["Location"]
    assert second.has_header("Retry-After")
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Job.objects.count() == 1
    assert len(fake_queue.enqueued) == 1


def test_replay_after_completion_returns_the_finished_job(submit, product, fake_queue):
    job_id = submit(purchase_body(product.pk), key="k").json()["id"]
    assert run_job(job_id) == JobStatus.COMPLETED
    replay = submit(purchase_body(product.pk), key="k")
    assert replay.status_code == 202
    assert replay.json()["id"] == job_id
    assert replay.json()["status"] == "completed"
    product.refresh_from_db()
    assert product.stock == 8
    assert len(fake_queue.enqueued) == 1


def test_same_body_with_reordered_keys_is_the_same_request(submit, product):
    first = submit({"goods": [{"product_id": product.pk, "quantity": 2}]}, key="k")
    second = submit({"goods": [{"quantity": 2, "product_id": product.pk}]}, key="k")
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "other_body",
    [
        lambda pid: purchase_body(pid, 3),
        lambda pid: purchase_body(pid, 2, payment_token="tok_decline"),
    ],
    ids=["other quantity", "other payment token"],
)
def test_same_key_other_body_is_422(submit, product, fake_queue, other_body):
    first = submit(purchase_body(product.pk), key="order-1")
    response = submit(other_body(product.pk), key="order-1")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in body["detail"]
    assert [str(pk) for pk in Job.objects.values_list("id", flat=True)] == [first.json()["id"]]
    assert len(fake_queue.enqueued) == 1


def test_invalid_body_with_a_used_key_is_400_not_422(submit, product):
    submit(purchase_body(product.pk), key="order-1")
    response = submit({"goods": []}, key="order-1")
    assert response.status_code == 400
    assert Job.objects.count() == 1


def test_same_key_from_another_user_is_a_separate_job(submit, product, other_api, user, other_user, fake_queue):
    mine = submit(purchase_body(product.pk), key="shared-key")
    theirs = submit(purchase_body(product.pk), key="shared-key", client=other_api)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert not theirs.has_header("Idempotent-Replayed")
    assert Job.objects.get(pk=mine.json()["id"]).owner == user
    assert Job.objects.get(pk=theirs.json()["id"]).owner == other_user
    assert len(fake_queue.enqueued) == 2


def test_other_key_same_body_is_a_new_job(submit, product, fake_queue):
    first = submit(purchase_body(product.pk), key="a")
    second = submit(purchase_body(product.pk), key="b")
    assert first.json()["id"] != second.json()["id"]
    assert Job.objects.count() == 2 and len(fake_queue.enqueued) == 2


def test_no_key_means_no_deduplication(submit, product):
    first = submit(purchase_body(product.pk))
    second = submit(purchase_body(product.pk))
    assert first.json()["id"] != second.json()["id"]
    assert Job.objects.count() == 2


@pytest.mark.parametrize("key", ["", "   ", '""', "k" * 256, '"' + "k" * 256 + '"'])
def test_bad_key_is_400_and_creates_nothing(submit, product, fake_queue, key):
    response = submit(purchase_body(product.pk), key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Job.objects.exists() and fake_queue.enqueued == []


def test_key_of_255_characters_is_accepted(submit, product):
    response = submit(purchase_body(product.pk), key="k" * 255)
    assert response.status_code == 202
    assert Job.objects.get().idempotency_key == "k" * 255


def test_quoted_key_equals_the_bare_key(submit, product, fake_queue):
    first = submit(purchase_body(product.pk), key='"abc"')
    second = submit(purchase_body(product.pk), key="abc")
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Job.objects.get().idempotency_key == "abc"
    assert len(fake_queue.enqueued) == 1


def test_key_is_reusable_after_the_job_is_deleted(submit, api, product):
    job_id = submit(purchase_body(product.pk), key="k").json()["id"]
    assert run_job(job_id) == JobStatus.COMPLETED
    assert api.delete(f"/api/jobs/{job_id}/").status_code == 204
    again = submit(purchase_body(product.pk, 3), key="k")
    assert again.status_code == 202
    assert again.json()["id"] != job_id
