"""Schemathesis against /api/schema/: no 5xx, every response as documented.

The schema is loaded from the app itself (WSGI, in this process, inside the
test's transaction), so the run needs no server and leaves nothing behind;
the autouse fake queue keeps submissions off the broker. Before the run the
test user gets a token, products, an order and jobs in every status, with
fixed ids that the hooks below put into generated requests next to random
ones, so operations reach their 200/202/204/304/409 answers and not only 404.
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from rest_framework.authtoken.models import Token

from jobs.models import JobStatus
from tests.integration.api_helpers import make_job

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 50
PASSWORD = "alice-pass-123"  # the ``user`` fixture's
# schemathesis' default for positive_data_acceptance (5xx is not_a_server_error's business)
# and 410: a job deleted earlier in the run answers its owner 410 Gone.
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]

JOB_IDS = {
    status: uuid.UUID(f"00000000-0000-4000-8000-00000000000{n}")
    for n, status in enumerate(JobStatus.values, start=1)
}
OTHER_USERS_JOB = uuid.UUID("00000000-0000-4000-8000-0000000000ff")
# A failed sales report: a kind that may be retried from the API.
RETRYABLE_JOB = uuid.UUID("00000000-0000-4000-8000-0000000000fe")


def config(token: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "auth": {"openapi": {"tokenAuth": {"bearer": token}}},
            "phases": {"stateful": {"enabled": False}},
            "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE}},
            "operations": [
                # Schema-valid but refused by design: a wrong username or
                # password is 400 (DRF's token view), and a reused
                # Idempotency-Key with another body is 422.
                {
                    "include-operation-id": "auth_token_create",
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400"]}},
                },
                # A sales report whose date_from is after its date_to is a
                # 400: a rule between two fields, which a schema cannot say.
                {
                    "include-operation-id": "reports_sales",
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400"]}},
                },
                {
                    "include-operation-id": "purchases_create",
                    # 400 for a Job-Options header that is not a known option within bounds.
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400", "422"]}},
                },
                # A webhook URL the server refuses to call (not https, an internal
                # address, a host that does not resolve) is a 400 by design.
                {
                    "include-operation-id": "webhooks_endpoint_update",
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400"]}},
                },
            ],
        }
    )


@pytest.fixture
def seeded(user, other_user, make_product, settings) -> dict[str, Any]:
    """The test user's world: products, an order, one job per status; another user's job."""
    from purchases.models import Order, OrderLine

    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {scope: "100000/min" for scope in rates},
    }
    cache.clear()
    products = [make_product(stock=1000) for _ in range(3)]
    for status, job_id in JOB_IDS.items():
        make_job(user, status=status, id=job_id)
    make_job(other_user, id=OTHER_USERS_JOB)
    make_job(user, kind="purchases.sales_report", status=JobStatus.FAILED, id=RETRYABLE_JOB)
    order = Order.objects.create(owner=user, status="paid", total=Decimal("20.00"), currency="EUR")
    OrderLine.objects.create(order=order, product=products[0], quantity=2, unit_price=Decimal("10.00"))
    return {
        "token": Token.objects.create(user=user).key,
        "username": user.username,
        "product_ids": [product.pk for product in products],
        "order_id": order.pk,
    }


@pytest.fixture
def api_schema(seeded):
    # Django closes the database connection at the end of each request; in a
    # test that would end the test's transaction. Django's own test client
    # disconnects these handlers for the same reason.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        from project.wsgi import application

        schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=config(seeded["token"]))
        install_hooks(schema, seeded)
        yield schema
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def install_hooks(schema: Any, seeded: dict[str, Any]) -> None:
    """Steer positive cases towards existing rows; negative ones go out as generated.

    Path ids and token credentials become, for some cases, those of seeded
    rows; purchase lines always name existing products (an unknown id is a
    400 by design, which a schema cannot express).
    """
    job_ids = [str(job_id) for job_id in [*JOB_IDS.values(), OTHER_USERS_JOB]]
    # DELETE leaves the failed job alone, so that cancelling it later answers 409.
    deletable = [job_id for job_id in job_ids if job_id != str(JOB_IDS[JobStatus.FAILED])]
    product_ids = seeded["product_ids"]
    credentials = {"username": seeded["username"], "password": PASSWORD}

    def steer(case: Any) -> Any:
        if case.headers and any(name.lower() == "host" for name in case.headers):
            # A generated Host header meets ALLOWED_HOSTS (Django's HTML 400)
            # before the API: the server's set-up, not an operation's contract.
            case.headers = {name: value for name, value in case.headers.items() if name.lower() != "host"}
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        path_parameters = case.path_parameters or {}
        if "job_id" in path_parameters:
            # Each generated id maps, deterministically, to itself or a seeded job.
            known = deletable if case.method.upper() == "DELETE" else job_ids
            if case.operation.path.endswith("/retry/"):
                known = [*job_ids, str(RETRYABLE_JOB)]
            case.path_parameters = {**path_parameters, "job_id": pick(path_parameters["job_id"], known)}
            if "If-None-Match" in (case.headers or {}):
                case.headers = {**case.headers, "If-None-Match": pick(case.headers["If-None-Match"], ["*"])}
        elif "id" in path_parameters:
            case.path_parameters = {
                **path_parameters,
                "id": pick(path_parameters["id"], [seeded["order_id"]]),
            }
        elif case.operation.path == "/api/auth/token/" and isinstance(case.body, dict):
            case.body = pick(case.body, [credentials])
        elif case.operation.path == "/api/purchases/" and isinstance(case.body, dict):
            case.body = with_real_products(case.body, product_ids)
        return case

    @schema.hook
    def map_case(context: Any, case: Any) -> Any:  # fuzzing and coverage phases
        return steer(case)

    @schema.hook
    def before_add_examples(context: Any, examples: list[Any]) -> None:  # the schema's examples
        examples[:] = [steer(case) for case in examples]


def pick(generated: Any, known: list[Any]) -> Any:
    """``generated`` or one of ``known``, chosen by a stable hash of ``generated``."""
    choices = [generated, *known]
    return choices[zlib.crc32(repr(generated).encode()) % len(choices)]


def with_real_products(body: dict[str, Any], product_ids: list[int]) -> dict[str, Any]:
    """Point each line at an existing product, one line per product."""
    lines: dict[int, dict[str, Any]] = {}
    for line in body.get("goods", []):
        product_id = product_ids[line["product_id"] % len(product_ids)]
        lines.setdefault(product_id, {**line, "product_id": product_id})
    return {**body, "goods": list(lines.values())}


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 renames the running test through ``node._nodeid``,
    # which pytest 9.2 no longer has (it keeps ``_id`` behind ``nodeid``).
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# What each operation must have answered at least once, so a run that only
# ever met 404s (hooks no longer applied, say) cannot pass unnoticed.
EXPECTED_STATUSES = {
    "POST /api/auth/token/": {200, 400},
    "GET /api/jobs/": {200, 400},
    "GET /api/jobs/{job_id}/": {200, 304, 404},
    "DELETE /api/jobs/{job_id}/": {204, 404, 409},
    "POST /api/jobs/{job_id}/cancel/": {200, 202, 404, 409},
    "POST /api/jobs/{job_id}/retry/": {202, 404, 409},
    "GET /api/orders/": {200},
    "GET /api/orders/{id}/": {200, 404},
    "GET /api/products/": {200},
    "POST /api/purchases/": {202, 400},
    "POST /api/webhooks/secret/": {201},
    "GET /api/webhooks/endpoint/": {200},
    "PUT /api/webhooks/endpoint/": {400},
}


@pytest.fixture
def statuses() -> Any:
    """Status codes seen per operation; checked, and printed, once the run is over."""
    seen: dict[str, Counter[int]] = defaultdict(Counter)
    yield seen
    print(f"\nschemathesis: {len(seen)} operations, {sum(sum(c.values()) for c in seen.values())} cases")
    for label, counts in sorted(seen.items()):
        print(f"  {label}: {sum(counts.values())} cases, statuses {dict(sorted(counts.items()))}")
    missing = {
        label: sorted(wanted - set(seen.get(label, {})))
        for label, wanted in EXPECTED_STATUSES.items()
        if wanted - set(seen.get(label, {}))
    }
    assert not missing, f"never answered: {missing}"


@schema.parametrize()
def test_api(case, statuses):
    response = case.call_and_validate()
    statuses[case.operation.label][response.status_code] += 1
