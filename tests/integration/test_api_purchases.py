"""POST /api/purchases/ (202 and validation), products, orders and unknown API paths."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from purchases.models import Order
from tests.integration.api_helpers import (
    JOB_DOCUMENT_KEYS,
    assert_json_404,
    post_json,
    purchase_body,
)

pytestmark = pytest.mark.django_db

URL = "/api/purchases/"


@pytest.fixture
def product(make_product):
    return make_product(stock=5)


@pytest.fixture
def submit(api, django_capture_on_commit_callbacks):
    def post(body, client=None, **headers):
        return post_json(client or api, URL, body, django_capture_on_commit_callbacks, **headers)

    return post


def test_purchase_is_accepted_as_a_pending_job(submit, product, user, fake_queue):
    response = submit(purchase_body(product.pk))
    assert response.status_code == 202
    body = response.json()
    assert set(body) == JOB_DOCUMENT_KEYS
    assert body["status"] == "pending"
    assert body["kind"] == "purchases.execute"
    job = Job.objects.get()
    assert body["id"] == str(job.pk)
    assert response["Location"] == f"/api/jobs/{job.pk}/"
    assert int(response["Retry-After"]) >= 1
    assert response.has_header("ETag")
    assert job.owner == user
    assert job.payload["goods"] == [{"product_id": product.pk, "quantity": 2}]
    assert fake_queue.enqueued == [(job.pk, "purchases.execute")]
    assert not response.has_header("Idempotent-Replayed")


def test_location_of_a_purchase_is_pollable(submit, api, product):
    response = submit(purchase_body(product.pk))
    polled = api.get(response["Location"])
    assert polled.status_code == 200
    assert polled.json()["id"] == response.json()["id"]


def test_purchase_holds_no_stock_until_run(submit, product):
    submit(purchase_body(product.pk, 5))
    product.refresh_from_db()
    assert product.stock == 5


@pytest.mark.parametrize("field", ["user", "owner"])
def test_owner_cannot_be_chosen_by_the_client(submit, product, other_user, field, fake_queue):
    response = submit(purchase_body(product.pk, **{field: other_user.pk}))
    assert response.status_code == 400
    assert field in response.json()
    assert not Job.objects.exists() and fake_queue.enqueued == []


def invalid_bodies(pid):
    """(name, body, key expected in the error document) for every rejected shape."""
    line = {"product_id": pid, "quantity": 2}
    return [
        ("empty goods", {"goods": []}, "goods"),
        ("missing goods", {}, "goods"),
        ("unknown product", {"goods": [{"product_id": 999999, "quantity": 1}]}, "goods"),
        ("quantity 0", {"goods": [{**line, "quantity": 0}]}, "goods"),
        ("quantity -1", {"goods": [{**line, "quantity": -1}]}, "goods"),
        ("quantity 1001", {"goods": [{**line, "quantity": 1001}]}, "goods"),
        ("duplicate lines", {"goods": [line, {**line, "quantity": 1}]}, "goods"),
        ("quantity string", {"goods": [{**line, "quantity": "2"}]}, "goods"),
        ("quantity true", {"goods": [{**line, "quantity": True}]}, "goods"),
        ("quantity 1.5", {"goods": [{**line, "quantity": 1.5}]}, "goods"),
        ("quantity null", {"goods": [{**line, "quantity": None}]}, "goods"),
        ("product_id null", {"goods": [{"product_id": None, "quantity": 1}]}, "goods"),
        ("product_id string", {"goods": [{"product_id": str(pid), "quantity": 1}]}, "goods"),
        ("missing quantity", {"goods": [{"product_id": pid}]}, "goods"),
        ("goods an object", {"goods": line}, "goods"),
        ("goods a string", {"goods": "lots"}, "goods"),
        ("goods null", {"goods": None}, "goods"),
        ("line not an object", {"goods": [pid]}, "goods"),
        ("body a list", [line], "non_field_errors"),
        ("body a number", 5, "non_field_errors"),
        ("unknown top-level field", {"goods": [line], "coupon": "FREE"}, "coupon"),
        ("too many lines", {"goods": [{"product_id": pid + i, "quantity": 1} for i in range(51)]}, "goods"),
    ]


@pytest.mark.parametrize("case", range(len(invalid_bodies(1))), ids=[c[0] for c in invalid_bodies(1)])
def test_invalid_purchase_is_400_and_creates_nothing(submit, product, fake_queue, case):
    _, body, error_key = invalid_bodies(product.pk)[case]
    response = submit(body)
    assert response.status_code == 400, response.content
    errors = response.json()
    assert error_key in errors, errors
    assert not Job.objects.exists()
    assert fake_queue.enqueued == []


def test_quantity_1000_is_the_accepted_limit(submit, product):
    assert submit(purchase_body(product.pk, 1000)).status_code == 202


def test_unknown_product_error_names_the_id(submit, product):
    response = submit({"goods": [{"product_id": 424242, "quantity": 1}]})
    assert "424242" in str(response.json()["goods"])


@pytest.mark.parametrize("text", ["{", '{"goods": [}', "not json", "{'goods': []}"])
def test_malformed_json_is_400(api, product, fake_queue, text, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, data=text, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
    assert not Job.objects.exists() and fake_queue.enqueued == []


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("text/plain", "goods"), ("application/x-www-form-urlencoded", "goods=1"), ("application/xml", "<a/>")],
)
def test_non_json_content_type_is_415(api, product, fake_queue, content_type, data):
    response = api.post(URL, data=data, content_type=content_type)
    assert response.status_code == 415
    assert "detail" in response.json()
    assert not Job.objects.exists() and fake_queue.enqueued == []


def test_multipart_form_is_415(api, product):
    response = api.post(URL, {"goods": "1"}, format="multipart")
    assert response.status_code == 415


def test_get_on_purchases_is_405(api):
    assert api.get(URL).status_code == 405


# --- products and orders -----------------------------------------------------


def test_products_list_fields(api, make_product):
    make_product(sku="B-1", name="Banana", stock=3)
    make_product(sku="A-1", name="Apple", price="1.50", stock=0)
    response = api.get("/api/products/")
    assert response.status_code == 200
    products = response.json()
    assert [p["name"] for p in products] == ["Apple", "Banana"]
    assert set(products[0]) == {"id", "sku", "name", "price", "stock"}
    assert products[0]["sku"] == "A-1" and products[0]["price"] == "1.50" and products[0]["stock"] == 0


@pytest.fixture
def paid_order(submit, product):
    job_id = submit(purchase_body(product.pk)).json()["id"]
    assert run_job(job_id) == JobStatus.COMPLETED
    return Order.objects.get(job_id=job_id)


def test_owner_sees_order_with_lines(api, paid_order, product):
    response = api.get(f"/api/orders/{paid_order.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == paid_order.pk and body["status"] == "paid" and body["total"] == "20.00"
    assert body["job_id"] == str(paid_order.job_id)
    assert len(body["lines"]) == 1
    line = body["lines"][0]
    assert line["product_id"] == product.pk and line["quantity"] == 2 and line["line_total"] == "20.00"


def test_order_list_shows_own_orders(api, other_api, paid_order):
    assert [o["id"] for o in api.get("/api/orders/").json()["results"]] == [paid_order.pk]
    assert other_api.get("/api/orders/").json()["results"] == []


def test_another_users_order_is_404(other_api, paid_order):
    assert_json_404(other_api.get(f"/api/orders/{paid_order.pk}/"))


@pytest.mark.parametrize("path", ["/api/orders/abc/", "/api/orders/999999/", "/api/nothing-here/", "/api/"])
def test_unknown_api_paths_are_404_json(api, path):
    assert_json_404(api.get(path))
