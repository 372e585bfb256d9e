"""The everyday poll, answered without Django REST framework's request cycle.

Nearly every request a job API serves is the same one: ``GET
/api/jobs/{id}/`` with a token and the last ``ETag``, answered ``304``.
Through ``APIView.dispatch`` it pays for a ``Request`` wrapper, content
negotiation, the exception machinery and the renderer, which together cost
more than the query that decides the answer. ``QuickPoll`` answers that
request itself, with the view's own authenticators, permissions and
throttles, and the same status, headers and body; anything else (a long
poll, a query string, another media type, a session, a bad token, a refusal,
an unknown job) goes to the DRF view unchanged, so every error keeps exactly
one implementation.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from jobs.api.responses import not_modified, polling_headers
from jobs.api.serializers import job_document
from jobs.selectors import job_poll_for_owner

# What a client that did not ask for anything else accepts; DRF's content
# negotiation would pick the JSON renderer for each of these.
_PLAIN_ACCEPTS = frozenset({"", "*/*", "application/json"})


class QuickPoll:
    """Answer a plain token-authenticated ``GET`` of a job as ``view_class`` would, or decline.

    ``__call__`` returns None when the request is not the plain case; the
    caller then runs the DRF view.
    """

    def __init__(self, view_class: type[APIView]) -> None:
        self.view_class = view_class
        self.renderer = JSONRenderer()
        self._view_headers: tuple[dict[str, str], list[str]] | None = None

    def __call__(self, request: HttpRequest, job_id: str) -> HttpResponse | None:
        """The response to a plain poll, or None to let the DRF view answer."""
        meta = request.META  # not request.GET and .headers: each parses on first use
        if request.method != "GET" or meta.get("QUERY_STRING") or meta.get("HTTP_ACCEPT", "") not in _PLAIN_ACCEPTS:
            return None
        view = self.view_class(format_kwarg=None)
        view.setup(request, job_id=job_id)  # as as_view() does: HEAD is served as GET, so Allow names it
        user = self._authenticate(view, request)
        if user is None:
            return None
        # What DRF's Request.user setter does: the user is the request's.
        request.user = user
        if not all(permission.has_permission(request, view) for permission in view.get_permissions()):
            return None
        if not all(throttle.allow_request(request, view) for throttle in view.get_throttles()):
            # Counted once here; the DRF view counts it again and answers 429.
            return None
        job = job_poll_for_owner(owner=user, job_id=job_id)
        if job is None:
            return None
        etag = job.etag
        if not_modified(request, etag):
            response = HttpResponse(status=304)
            # DRF's 304 carries no body and so no media type.
            del response["Content-Type"]
        else:
            # Straight from the polled row: no serializer, no model instance.
            document = job_document(job, request)
            response = HttpResponse(self.renderer.render(document), content_type="application/json")
        for name, value in polling_headers(job, etag).items():
            response[name] = value
        # The headers APIView.finalize_response adds (Allow; Vary with several
        # renderers): they depend on the view class alone, so read them once.
        if self._view_headers is None:
            extra = dict(view.default_response_headers)
            vary = extra.pop("Vary", None)
            self._view_headers = (extra, [part.strip() for part in vary.split(",")] if vary else [])
        extra, vary = self._view_headers
        for name, value in extra.items():
            response[name] = value
        if vary:
            patch_vary_headers(response, vary)
        return response

    @staticmethod
    def _authenticate(view: APIView, request: HttpRequest) -> Any | None:
        """The user of the first token authenticator that knows the request, as DRF would find it.

        Token authenticators read only the ``Authorization`` header; any other
        kind reached first (a session) means DRF's own cycle decides.
        """
        for authenticator in view.get_authenticators():
            if not isinstance(authenticator, TokenAuthentication):
                return None
            try:
                found = authenticator.authenticate(request)
            except APIException:
                return None
            if found is not None:
                return found[0]
        return None
