"""The OpenAPI description at /api/schema/ and Swagger UI at /api/docs/.

The schema must generate without a warning, validate as OpenAPI 3, document
every API route (and nothing that is not one) with the status codes and
headers the views really send, and describe the job document field for
field. Answers that the schemathesis run cannot provoke (413, 415, 429, 304)
are made here and checked against the schema with schemathesis' own checks.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.cache import cache
from django.core.management import call_command
from django.db import close_old_connections
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobs.api.serializers import JobSerializer
from jobs.models import JobStatus
from tests.integration.api_helpers import make_job, purchase_body

pytestmark = pytest.mark.django_db

HOST = {"HTTP_HOST": "localhost"}

# Every operation with the statuses it answers (README, "The API").
DOCUMENTED = {
    ("post", "/api/auth/token/"): {"200", "400", "413", "415"},
    ("get", "/api/jobs/"): {"200", "400", "401", "404"},
    ("get", "/api/jobs/{job_id}/"): {"200", "304", "400", "401", "404", "410", "429"},
    ("get", "/api/jobs/{job_id}/events/"): {"200", "204", "401", "404", "410", "429"},
    ("delete", "/api/jobs/{job_id}/"): {"204", "401", "403", "404", "409", "410", "429"},
    ("post", "/api/jobs/{job_id}/cancel/"): {"200", "202", "401", "403", "404", "409", "410"},
    ("post", "/api/jobs/{job_id}/retry/"): {"202", "401", "403", "404", "409", "410", "429"},
    ("get", "/api/products/"): {"200", "401"},
    ("get", "/api/orders/"): {"200", "401", "404"},
    ("get", "/api/orders/{id}/"): {"200", "401", "404"},
    ("post", "/api/purchases/"): {"201", "202", "400", "401", "403", "413", "415", "422", "429"},
    ("post", "/api/reports/sales/"): {"200", "202", "400", "401", "403", "413", "415", "422", "429"},
    ("post", "/api/webhooks/secret/"): {"201", "401", "403", "429"},
    ("get", "/api/webhooks/endpoint/"): {"200", "401", "429"},
    ("put", "/api/webhooks/endpoint/"): {"200", "400", "401", "403", "429"},
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def operations(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


# --- The schema itself --------------------------------------------------------


def test_schema_is_public_json_or_yaml_and_valid_openapi_3(client):
    as_yaml = client.get("/api/schema/", **HOST)
    as_json = client.get("/api/schema/?format=json", HTTP_AUTHORIZATION="Bearer stale-token", **HOST)

    assert as_yaml.status_code == 200, as_yaml.content[:300]
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert as_json.status_code == 200, as_json.content[:300]
    document = json.loads(as_json.content)
    assert yaml.safe_load(as_yaml.content) == document
    assert document["openapi"].startswith("3.0")
    assert document["info"]["title"] == "Jobs API"
    validate_schema(document)


def test_schema_generates_without_warnings(tmp_path: Path):
    # --fail-on-warn turns every drf-spectacular warning or error into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["paths"]


def test_every_documented_operation_is_a_route_and_every_api_route_is_documented(openapi):
    documented = operations(openapi)
    assert set(documented) == set(DOCUMENTED)

    for method, path in documented:
        concrete = path.replace("{job_id}", str(uuid.uuid4())).replace("{id}", "1")
        view_class = resolve(concrete).func.view_class
        assert hasattr(view_class, method), (
            f"{method.upper()} {path} is documented but {view_class} has no {method}"
        )

    routes = {
        "/" + route
        for route in api_routes(get_resolver().url_patterns)
        if route.startswith("api/") and route not in {"api/schema/", "api/docs/"}
    }
    documented_paths = {re.sub(r"\{[^}]+\}", "<>", path) for _, path in documented}
    assert {re.sub(r"<[^>]+>", "<>", route) for route in routes} == documented_paths


def api_routes(patterns: list[Any], prefix: str = "") -> list[str]:
    routes: list[str] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += api_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.append(prefix + str(pattern.pattern))
    return routes


def test_each_operation_documents_its_real_status_codes(openapi):
    for key, operation in operations(openapi).items():
        assert set(operation["responses"]) == DOCUMENTED[key], key


def test_error_bodies_are_detail_and_code_or_field_errors(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["Error"]["required"] == ["detail"]
    assert set(schemas["Error"]["properties"]) == {"detail", "code"}
    assert {ref["$ref"] for ref in schemas["BadRequest"]["oneOf"]} == {
        "#/components/schemas/Error",
        "#/components/schemas/FieldErrors",
    }
    for (method, path), operation in operations(openapi).items():
        for status, response in operation["responses"].items():
            if status.startswith("4") and "content" in response:
                ref = response["content"]["application/json"]["schema"]["$ref"]
                expected = {"400": "BadRequest", "410": "Gone"}.get(status, "Error")
                assert ref == f"#/components/schemas/{expected}", (method, path, status)


def test_polling_and_submission_headers_are_documented(openapi):
    ops = operations(openapi)

    def headers(key: tuple[str, str], status: str) -> dict[str, Any]:
        return ops[key]["responses"][status].get("headers", {})

    poll = ("get", "/api/jobs/{job_id}/")
    assert {"ETag", "Cache-Control", "Retry-After"} <= set(headers(poll, "200"))
    assert headers(poll, "200")["ETag"]["required"] is True
    assert {"ETag", "Cache-Control"} <= set(headers(poll, "304"))
    assert "content" not in ops[poll]["responses"]["304"]
    assert "If-None-Match" in {p["name"] for p in ops[poll]["parameters"] if p["in"] == "header"}

    submit = ("post", "/api/purchases/")
    accepted = headers(submit, "202")
    assert {"Location", "Retry-After", "ETag", "Idempotent-Replayed"} <= set(accepted)
    assert accepted["Location"]["required"] and accepted["Retry-After"]["required"]
    idempotency = [p for p in ops[submit]["parameters"] if p["name"] == "Idempotency-Key"]
    assert idempotency and idempotency[0]["in"] == "header"
    assert ops[submit]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PurchaseRequest"
    }

    for key, operation in ops.items():
        if "429" in operation["responses"]:
            assert headers(key, "429")["Retry-After"]["required"] is True, key
        if "401" in operation["responses"]:
            assert "WWW-Authenticate" in headers(key, "401"), key
        if "202" in operation["responses"]:
            assert operation["responses"]["202"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Job"
            }, key


def test_the_job_document_is_described_field_for_field(openapi):
    schemas = openapi["components"]["schemas"]
    job = schemas["Job"]
    assert set(job["properties"]) == set(JobSerializer.Meta.fields)
    assert set(job["required"]) == set(JobSerializer.Meta.fields)
    assert schemas["JobStatusEnum"]["enum"] == JobStatus.values
    assert job["properties"]["progress"] == {"$ref": "#/components/schemas/JobProgress"}
    assert set(schemas["JobProgress"]["properties"]) == {"percentage", "message"}
    assert job["properties"]["error"]["nullable"] is True
    assert job["properties"]["error"]["allOf"] == [{"$ref": "#/components/schemas/JobError"}]
    assert set(schemas["JobError"]["required"]) == {"code", "message"}
    # result: any object, null until completed; a purchase's is spelled out.
    assert job["properties"]["result"]["nullable"] is True
    assert {"$ref": "#/components/schemas/PurchaseResult"} in job["properties"]["result"]["anyOf"]
    assert set(schemas["PurchaseResult"]["required"]) == {"order_id", "total", "currency", "lines"}
    for name in ("started_at", "finished_at", "expires_at"):
        assert job["properties"][name]["nullable"] is True
    assert schemas["PaginatedJobList"]["properties"]["results"]["items"] == {
        "$ref": "#/components/schemas/Job"
    }
    assert {"next", "previous"} <= set(schemas["PaginatedJobList"]["properties"])


def test_the_purchase_body_is_described_with_its_limits(openapi):
    schemas = openapi["components"]["schemas"]
    body = schemas["PurchaseRequest"]
    assert body["required"] == ["goods"]
    assert body["additionalProperties"] is False
    assert (body["properties"]["goods"]["minItems"], body["properties"]["goods"]["maxItems"]) == (1, 50)
    line = schemas["PurchaseLineRequest"]["properties"]
    assert (line["quantity"]["minimum"], line["quantity"]["maximum"]) == (1, 1000)
    assert line["product_id"]["minimum"] == 1


def test_bearer_tokens_and_sessions_are_the_security_schemes(openapi):
    assert openapi["components"]["securitySchemes"]["tokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert "cookieAuth" in openapi["components"]["securitySchemes"]
    ops = operations(openapi)
    assert "security" not in ops[("post", "/api/auth/token/")]
    for key, operation in ops.items():
        if key != ("post", "/api/auth/token/"):
            assert {"tokenAuth": []} in operation["security"], key


# --- Swagger UI ---------------------------------------------------------------


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/", **HOST)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "/api/schema/" in page
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "https://"):
        assert cdn not in page
    for asset in (
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "favicon-32x32.png",
    ):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


# --- Real answers against the schema ------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(user):
    """The schema, loaded from the app, with requests going to it in this process."""
    # As in test_schemathesis: keep Django from closing the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        from project.wsgi import application

        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {Token.objects.create(user=user).key}"}


def send(api_schema: Any, method: str, path: str, **case: Any) -> Any:
    case_ = api_schema[path][method].Case(**case)
    response = case_.call()
    case_.validate_response(response, checks=CHECKS)
    return response


def test_answers_the_fuzzer_cannot_provoke_match_the_schema(api_schema, bearer, user, make_product, settings):
    product = make_product()
    job = make_job(user, status=JobStatus.PROCESSING)

    too_large = {"goods": [], "payment_token": "x" * (settings.API_MAX_BODY_BYTES + 1)}
    assert (
        send(
            api_schema,
            "POST",
            "/api/purchases/",
            headers=bearer,
            body=too_large,
            media_type="application/json",
        ).status_code
        == 413
    )
    assert (
        send(
            api_schema, "POST", "/api/purchases/", headers=bearer, body="goods=1", media_type="text/plain"
        ).status_code
        == 415
    )
    assert (
        send(api_schema, "POST", "/api/auth/token/", body="user", media_type="text/plain").status_code == 415
    )
    assert (
        send(
            api_schema,
            "POST",
            "/api/purchases/",
            body=purchase_body(product.pk),
            media_type="application/json",
        ).status_code
        == 401
    )

    poll = send(
        api_schema, "GET", "/api/jobs/{job_id}/", headers=bearer, path_parameters={"job_id": str(job.pk)}
    )
    assert poll.status_code == 200 and poll.headers["retry-after"]
    not_modified = send(
        api_schema,
        "GET",
        "/api/jobs/{job_id}/",
        headers={**bearer, "If-None-Match": poll.headers["etag"][0]},
        path_parameters={"job_id": str(job.pk)},
    )
    assert not_modified.status_code == 304

    key = {"Idempotency-Key": "k-1"}
    first = send(
        api_schema,
        "POST",
        "/api/purchases/",
        headers={**bearer, **key},
        body=purchase_body(product.pk),
        media_type="application/json",
    )
    replay = send(
        api_schema,
        "POST",
        "/api/purchases/",
        headers={**bearer, **key},
        body=purchase_body(product.pk),
        media_type="application/json",
    )
    reused = send(
        api_schema,
        "POST",
        "/api/purchases/",
        headers={**bearer, **key},
        body=purchase_body(product.pk, quantity=3),
        media_type="application/json",
    )
    assert (first.status_code, replay.status_code, reused.status_code) == (202, 202, 422)
    assert replay.headers["idempotent-replayed"] == ["true"]


def test_throttled_answers_match_the_schema(api_schema, bearer, user, make_product, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"jobs.poll": "1/min", "jobs.submit": "1/min"},
    }
    cache.clear()
    product = make_product()
    job = make_job(user, status=JobStatus.COMPLETED)
    try:
        statuses = [
            send(
                api_schema,
                "POST",
                "/api/purchases/",
                headers=bearer,
                body=purchase_body(product.pk),
                media_type="application/json",
            ).status_code
            for _ in range(2)
        ] + [
            send(
                api_schema,
                "GET",
                "/api/jobs/{job_id}/",
                headers=bearer,
                path_parameters={"job_id": str(job.pk)},
            ).status_code
            for _ in range(2)
        ]
    finally:
        cache.clear()
    assert statuses == [202, 429, 200, 429]


def test_gone_says_when_and_why(openapi):
    gone = openapi["components"]["schemas"]["Gone"]
    assert set(gone["properties"]) == {"detail", "code", "id", "kind", "removed_at", "reason"}
    assert set(gone["required"]) == {"detail", "code", "id", "kind", "removed_at", "reason"}
    assert gone["properties"]["removed_at"]["format"] == "date-time"
    assert gone["properties"]["reason"]["allOf"] == [{"$ref": "#/components/schemas/TombstoneReasonEnum"}]
    assert openapi["components"]["schemas"]["TombstoneReasonEnum"]["enum"] == ["expired", "deleted", "purged"]
