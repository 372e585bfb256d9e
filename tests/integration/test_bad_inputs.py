"""Inputs that once gave a 500 or an HTML error page (issue 11, defects 6, 9, 10 and 11).

Each answers a clear client error instead: JSON under ``/api/`` with
``detail`` and ``code``, a refused admin filter, a command that exits 2.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from jobs.models import Job
from tests.integration.api_helpers import make_job, post_json, purchase_body
from tests.support.admin import CHANGELIST

pytestmark = pytest.mark.django_db

REPORT = "/api/reports/sales/"
ROOT = Path(__file__).resolve().parents[2]


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    """``response`` is a JSON error with ``detail`` and ``code`` (``code`` as given)."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert isinstance(body.get("code"), str) and body["code"]
    if code is not None:
        assert body["code"] == code
    return body


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    api.raise_request_exception = False

    def send(url, body, **headers):
        return post_json(api, url, body, django_capture_on_commit_callbacks, **headers)

    return send


# --- 6. the sales report's dates and the jobs list's cursor -------------------


@pytest.mark.parametrize("headers", [{}, {"HTTP_PREFER": "respond-async"}, {"HTTP_X_JOB_FLAG": "ON"}], ids=["inline", "prefer", "x-job-flag"])
@pytest.mark.parametrize(
    ("body", "field"),
    [({"date_to": "0001-01-15"}, "date_to"), ({"date_from": "0001-01-01", "date_to": "0001-01-02"}, "date_from")],
    ids=["default-start-before-year-1", "year-1"],
)  # fmt: skip
def test_report_dates_out_of_range_are_400_and_create_no_job(post, fake_queue, headers, body, field):
    response = post(REPORT, body, **headers)
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()
    assert not Job.objects.exists() and fake_queue.enqueued == []


@pytest.mark.parametrize(
    "position",
    ["9999-12-31T23:59:59-23:00", "0001-01-01 00:00:00+23:00", "2024-01-01 00:00:00"],
    ids=["offset-beyond-postgresql", "before-year-1-in-utc", "naive"],
)
def test_list_cursor_with_an_unusable_timestamp_is_refused_in_json(api, user, position):
    make_job(user)
    api.raise_request_exception = False
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    body = assert_json_error(api.get("/api/jobs/", {"cursor": cursor}), 404, "not_found")
    assert body["detail"] == "Invalid cursor"


def test_list_cursor_with_a_valid_foreign_offset_still_pages(api, user):
    job = make_job(user)
    later = job.created_at.astimezone().replace(year=job.created_at.year + 1)
    cursor = base64.b64encode(urlencode({"p": later.isoformat()}).encode()).decode()
    response = api.get("/api/jobs/", {"cursor": cursor})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [str(job.pk)]


# --- 9. admin changelist filters with a NUL byte -------------------------------


@pytest.mark.parametrize("params", [{"status__exact": "\x00"}, {"kind": "\x00"}, {"kind": "a\x00b"}, {"q": "\x00"}])
def test_admin_changelist_refuses_nul_bytes(admin_client, user, params):
    make_job(user)
    admin_client.raise_request_exception = False
    response = admin_client.get(CHANGELIST, params)
    # Django's answer to any unusable lookup: back to the list, with an error.
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == f"{CHANGELIST}?e=1"


# --- 10. commands with huge durations -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("purge_jobs", "--older-than", "1000000d", "--dry-run"), ("retry_jobs", "--since", "800000d", "--dry-run"),
     ("purge_jobs", "--older-than", "99999999999999w"), ("retry_jobs", "--since", "9" * 5000 + "s")],
    ids=["purge-days", "retry-days", "weeks-beyond-timedelta", "5000-digits"],
)  # fmt: skip
def test_commands_refuse_durations_over_a_century(args):
    with pytest.raises(CommandError, match="at most 100 years|is not a duration"):
        call_command(*args, stdout=StringIO(), stderr=StringIO())


def test_a_century_is_still_accepted():
    out = StringIO()
    call_command("purge_jobs", "--older-than", "36500d", "--dry-run", stdout=out)
    assert "Dry run: 0" in out.getvalue()


@pytest.mark.parametrize("args", [("purge_jobs", "--older-than", "1000000d", "--dry-run"), ("retry_jobs", "--since", "800000d")])
def test_command_line_with_a_huge_duration_exits_2_without_a_traceback(args):
    # Refused while parsing the arguments: no database is touched.
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "at most 100 years" in done.stderr


# --- 11. error shapes ---------------------------------------------------------------


def test_payment_token_must_be_a_string(post, make_product, fake_queue):
    product = make_product()
    response = post("/api/purchases/", purchase_body(product.pk, payment_token=5))
    assert response.status_code == 400, response.content[:300]
    assert "payment_token" in response.json()
    assert not Job.objects.exists()


UNKNOWN_JOB = "/api/jobs/00000000-0000-0000-0000-000000000000/"


@pytest.mark.parametrize(
    "path",
    ["/api/no-such-thing/", UNKNOWN_JOB, f"{UNKNOWN_JOB}?wait=1", f"{UNKNOWN_JOB}events/", f"{UNKNOWN_JOB}cancel/", "/api/orders/999999/"],
)  # fmt: skip
def test_api_404s_carry_a_code(api, path):
    method = api.post if path.endswith("cancel/") else api.get
    assert_json_error(method(path), 404, "not_found")


def test_drf_errors_carry_their_code(api, client):
    assert_json_error(client.get("/api/jobs/"), 401, "not_authenticated")
    assert_json_error(api.put("/api/jobs/"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path", ["/api/purchases/", "/api/auth/token/"],
)
def test_a_body_over_data_upload_max_memory_size_is_json(settings, user, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.API_MAX_BODY_BYTES = 10**6  # so that Django's limit, not the JSON parser's, is hit
    client = Client(raise_request_exception=False)
    client.force_login(user)  # a session: DRF's CSRF check reads the body through Django
    body = json.dumps({"username": "alice", "password": "x" * 5000})
    response = client.post(path, body, content_type="application/json")
    body = assert_json_error(response, 413, "request_too_large")
    assert "1000-byte" in body["detail"]


def test_a_bad_host_under_api_is_json(api):
    api.raise_request_exception = False
    body = assert_json_error(api.get("/api/jobs/", HTTP_HOST="evil.example"), 400, "invalid_host")
    assert "evil.example" not in body["detail"]  # no echo of attacker input


def test_a_bad_host_outside_api_stays_html(client):
    client.raise_request_exception = False
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")
