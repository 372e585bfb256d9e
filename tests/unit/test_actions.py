"""``jobs.api.actions`` without HTTP: parse_preference, runs_as_job, run_action, current_job()."""

from __future__ import annotations

import io
import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from jobs import JobError, current_job
from jobs.api.actions import Preference, parse_preference, run_action, runs_as_job
from jobs.context import InlineJobContext, JobContext, running
from jobs.models import Job, JobStatus
from jobs import registry
from jobs.registry import ActionResponse, get_kind
from jobs.runner import run_job

PROGRESS_KIND = "tests.actions_progress"
factory = APIRequestFactory()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The users' passwords are never checked here; the default hasher costs a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Views for the tests (module level: the worker imports them back) ----------


class EchoView(APIView):
    """Answers with what it sees of its request."""

    def post(self, request, pk):
        return Response(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_params.dict(),
                "pk": pk,
                "host": request.get_host(),
                "secure": request.is_secure(),
                "user": request.user.username if request.user.is_authenticated else None,
                "data": request.data,
                "action": getattr(self, "action", None),
                "url": request.build_absolute_uri(),
            },
            status=201,
        )


class Invalid(serializers.Serializer):
    x = serializers.IntegerField()


def validation_error() -> Exception:
    serializer = Invalid(data={"x": "nope"})
    serializer.is_valid()
    return serializers.ValidationError(serializer.errors)


RAISES = {
    "not-found": NotFound,
    "http404": lambda: Http404("No such thing."),
    "permission-denied": PermissionDenied,
    "validation": validation_error,
    "job-error": lambda: JobError("out_of_luck", "No luck."),
    "runtime-error": lambda: RuntimeError("boom"),
}


class RaisingView(APIView):
    """Raises what ``?raise=`` names."""

    def post(self, request):
        raise RAISES[request.query_params["raise"]]()


class TypedView(APIView):
    """Answers with values that JSON has no type for."""

    def post(self, request):
        return Response({"when": date(2024, 5, 6), "amount": Decimal("1.50"), "id": uuid.UUID(int=1)})


class PlainView(APIView):
    def post(self, request):
        return {"not": "a Response"}


class StepsSerializer(serializers.Serializer):
    cancel_first = serializers.BooleanField(default=False)


class ProgressView(APIView):
    """Reports progress through current_job() and says what it saw."""

    @runs_as_job(kind=PROGRESS_KIND, input=StepsSerializer, timeout=7, max_attempts=2, ttl=90)
    def post(self, request):
        job = current_job()
        if job.in_job and request.data.get("cancel_first"):
            Job.objects.filter(pk=job.job_id).update(cancel_requested=True)
        job.progress(40, "Halfway")
        seen = None
        if job.in_job:
            seen = Job.objects.values("progress_percentage", "progress_message").get(pk=job.job_id)
        return Response({"in_job": job.in_job, "seen": seen, "job_id": str(job.job_id)})


def context(**overrides: Any) -> JobContext:
    values: dict[str, Any] = {
        "job_id": uuid.uuid4(),
        "kind": "tests.actions",
        "owner_id": None,
        "attempt": 1,
        "max_attempts": 1,
    }
    values.update(overrides)
    return JobContext(**values)


# --- parse_preference ------------------------------------------------------------


def preference(**meta: str) -> Preference:
    return parse_preference(Request(factory.post("/x/", **meta)))


@pytest.mark.parametrize(
    "prefer, expected",
    [
        ("respond-async", Preference(True, None)),
        ("RESPOND-ASYNC", Preference(True, None)),
        ("Respond-Async, Wait=5", Preference(True, 5.0)),
        ("wait=3, respond-async", Preference(True, 3.0)),
        ('respond-async, wait="4"', Preference(True, 4.0)),
        ("respond-async, wait = 6", Preference(True, 6.0)),
        ("respond-async; foo=bar, wait=2; x", Preference(True, 2.0)),
        ("  , respond-async ,, ", Preference(True, None)),
        ("wait=5", Preference(False, 5.0)),
        ("respond-async, wait=0", Preference(True, 0.0)),
        ("respond-async, wait=100", Preference(True, 10.0)),
        ("respond-async, wait=abc", Preference(True, None)),
        ("respond-async, wait=-1", Preference(True, None)),
        ("respond-async, wait=1.5", Preference(True, None)),
        ("respond-async, wait=", Preference(True, None)),
        ("respond-async, wait=\u00b2", Preference(True, None)),
        ("return=minimal, handling=lenient", Preference(False, None)),
        ("respond-async-later", Preference(False, None)),
        ("no-respond-async", Preference(False, None)),
        ("", Preference(False, None)),
    ],
)
def test_prefer_header(prefer, expected):
    parsed = preference(HTTP_PREFER=prefer)
    assert (parsed.respond_async, parsed.wait) == (expected.respond_async, expected.wait)
    # Asked for in Prefer: the 202 will say Preference-Applied.
    assert parsed.preferred is expected.respond_async


def test_no_headers_is_no_preference():
    assert preference() == Preference(respond_async=False, wait=None)


@pytest.mark.parametrize(
    "flag, expected",
    [("ON", True), ("on", True), (" On ", True), ("OFF", False), ("1", False), ("", False)],
)
def test_x_job_flag(flag, expected):
    assert preference(HTTP_X_JOB_FLAG=flag).respond_async is expected


def test_x_job_flag_combines_with_prefer_wait():
    assert preference(HTTP_X_JOB_FLAG="ON", HTTP_PREFER="wait=2") == Preference(True, 2.0, preferred=False)


def test_repeated_prefer_headers_are_read_together():
    # An ASGI server passes each header line; Django joins repeated ones with commas.
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/x/",
        "query_string": b"",
        "headers": [(b"prefer", b"wait=3"), (b"prefer", b"Respond-Async")],
    }
    request = ASGIRequest(scope, io.BytesIO(b""))
    assert request.headers["Prefer"] == "wait=3,Respond-Async"
    assert parse_preference(Request(request)) == Preference(True, 3.0, preferred=True)


def test_wait_is_capped_by_the_setting_read_at_call_time(settings):
    settings.JOBS = {**settings.JOBS, "PREFER_WAIT_MAX": 2}
    assert preference(HTTP_PREFER="respond-async, wait=9").wait == 2.0
    assert preference(HTTP_PREFER="respond-async, wait=1").wait == 1.0


# --- runs_as_job -----------------------------------------------------------------


def test_runs_as_job_registers_the_kind_with_its_policies():
    kind = get_kind(PROGRESS_KIND)
    assert kind.input is StepsSerializer
    assert (kind.timeout, kind.max_attempts, kind.ttl.total_seconds()) == (7, 2, 90)
    assert ProgressView.post.job_kind == PROGRESS_KIND
    assert ProgressView.post.job_always is False


def test_runs_as_job_refuses_a_function_the_worker_could_not_import():
    def post(self, request):
        return Response()

    with pytest.raises(TypeError, match="module"):
        runs_as_job(kind="tests.actions_local")(post)


def test_a_kind_belongs_to_one_action(monkeypatch):
    # Work on a copy of the registry: the kind is re-registered below.
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    original = get_kind(PROGRESS_KIND).handler

    def post(self, request):
        return Response()

    post.__module__, post.__qualname__ = __name__, "SomeOtherView.post"
    with pytest.raises(ValueError, match="already registered"):
        runs_as_job(kind=PROGRESS_KIND)(post)
    # The same action decorated again (its module imported twice) is fine.
    post.__qualname__ = "ProgressView.post"
    runs_as_job(kind=PROGRESS_KIND, input=StepsSerializer, timeout=7, max_attempts=2, ttl=90)(post)
    assert get_kind(PROGRESS_KIND).handler.__qualname__ == "ProgressView.post"
    assert get_kind(PROGRESS_KIND).handler is not original


# --- run_action ------------------------------------------------------------------


@pytest.mark.django_db
def test_run_action_rebuilds_the_request_from_the_call(user):
    call = {
        "method": "POST",
        "path": "/api/things/7/",
        "query": "a=1&b=2",
        "kwargs": {"pk": "7"},
        "host": "localhost:8443",
        "secure": True,
        "action": "create",
    }
    answer = run_action(EchoView, EchoView.post, ctx=context(owner_id=user.pk, call=call), data={"n": 1})
    assert answer == ActionResponse(
        status=201,
        body={
            "method": "POST",
            "path": "/api/things/7/",
            "query": {"a": "1", "b": "2"},
            "pk": "7",
            "host": "localhost:8443",
            "secure": True,
            "user": user.username,
            "data": {"n": 1},
            "action": "create",
            "url": "https://localhost:8443/api/things/7/?a=1&b=2",
        },
    )


@pytest.mark.django_db
def test_run_action_takes_a_query_as_a_mapping_and_has_defaults():
    call = {"query": {"tag": ["x", "y"]}, "kwargs": {"pk": "1"}}
    answer = run_action(EchoView, EchoView.post, ctx=context(call=call), data={})
    assert answer.body["query"] == {"tag": "y"}
    assert answer.body["url"] == "http://localhost/?tag=x&tag=y"
    assert (answer.body["method"], answer.body["user"], answer.body["action"]) == ("POST", None, None)


@pytest.mark.django_db
def test_run_action_stores_the_body_as_the_json_renderer_sends_it():
    answer = run_action(TypedView, TypedView.post, ctx=context(), data={})
    sent = {"when": date(2024, 5, 6), "amount": Decimal("1.50"), "id": uuid.UUID(int=1)}
    assert answer.body == json.loads(JSONRenderer().render(sent))
    assert answer.body == {"when": "2024-05-06", "amount": 1.5, "id": str(uuid.UUID(int=1))}


@pytest.mark.django_db
def test_run_action_sends_the_payload_as_a_json_body():
    data = {"when": date(2024, 5, 6), "amount": Decimal("1.50"), "nested": {"list": [1, "a"]}}
    answer = run_action(EchoView, EchoView.post, ctx=context(call={"kwargs": {"pk": "1"}}), data=data)
    assert answer.body["data"] == {"when": "2024-05-06", "amount": 1.5, "nested": {"list": [1, "a"]}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, status, body",
    [
        ("not-found", 404, {"detail": "Not found.", "code": "not_found"}),
        ("http404", 404, {"detail": "No such thing.", "code": "not_found"}),
        (
            "permission-denied",
            403,
            {"detail": "You do not have permission to perform this action.", "code": "permission_denied"},
        ),
        ("validation", 400, {"x": ["A valid integer is required."]}),
    ],
)
def test_run_action_turns_drf_handled_errors_into_the_answer(name, status, body):
    ctx = context(call={"query": f"raise={name}"})
    answer = run_action(RaisingView, RaisingView.post, ctx=ctx, data={})
    assert (answer.status, answer.body) == (status, body)


@pytest.mark.django_db
@pytest.mark.parametrize("name, exception", [("job-error", JobError), ("runtime-error", RuntimeError)])
def test_run_action_leaves_other_exceptions_to_the_runner(name, exception):
    with pytest.raises(exception):
        run_action(RaisingView, RaisingView.post, ctx=context(call={"query": f"raise={name}"}), data={})


@pytest.mark.django_db
def test_run_action_refuses_an_answer_that_is_not_a_drf_response():
    with pytest.raises(TypeError, match="PlainView answered with dict"):
        run_action(PlainView, PlainView.post, ctx=context(), data={})


# --- current_job() ----------------------------------------------------------------


def test_current_job_outside_a_job_is_an_inline_no_op():
    # No database access is allowed in this test: any query would raise.
    job = current_job()
    assert isinstance(job, InlineJobContext)
    assert (job.in_job, job.job_id, job.is_last_attempt) == (False, None, True)
    assert job.progress(50, "ignored") is None
    assert job.progress(100, "ignored", cancellable=False) is None
    assert job.cancel_requested() is False


def test_running_sets_and_restores_the_current_job():
    outer, inner = context(), context()
    with running(outer):
        assert current_job() is outer
        with running(inner):
            assert current_job() is inner
        assert current_job() is outer
    assert isinstance(current_job(), InlineJobContext)


@pytest.mark.django_db
def test_the_same_action_is_a_no_op_inline_and_reports_progress_in_the_worker(user):
    request = factory.post("/progress/", {}, format="json")
    force_authenticate(request, user=user)
    inline = ProgressView.as_view()(request)
    assert inline.status_code == 200
    assert inline.data == {"in_job": False, "seen": None, "job_id": "None"}

    job = Job.objects.create(kind=PROGRESS_KIND, owner=user, payload={"cancel_first": False})
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    job.refresh_from_db()
    assert job.result == {
        "in_job": True,
        "seen": {"progress_percentage": 40, "progress_message": "Halfway"},
        "job_id": str(job.pk),
    }
    assert job.result_status == 200
    assert isinstance(current_job(), InlineJobContext)


@pytest.mark.django_db
def test_progress_through_current_job_honours_a_cancel_in_the_worker(user):
    job = Job.objects.create(kind=PROGRESS_KIND, owner=user, payload={"cancel_first": True})
    assert run_job(str(job.pk)) == JobStatus.CANCELLED
    job.refresh_from_db()
    assert job.error["code"] == "cancelled"
    assert job.result is None
