"""Responses that carry a job document with its polling headers."""

from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest
from django.utils.http import parse_etags
from rest_framework import status as http_status
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.serializers import JobSerializer, job_path
from jobs.conf import jobs_settings
from jobs.models import Job
from jobs.selectors import PolledJob, job_etag


def job_location(job: Job) -> str:
    """Return the path clients poll for ``job``."""
    return job_path(job.pk)


def etag_for(document: dict) -> str:
    """Return a strong tag for a serialized job document (event stream ids)."""
    body = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def not_modified(request: Request | HttpRequest, etag: str) -> bool:
    """True when the request's ``If-None-Match`` already holds ``etag``."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header == etag:
        return True  # what a polling client sends back, decided without parsing
    # If-None-Match compares weakly (RFC 9110 13.1.2): proxies that
    # compress responses turn our strong ETag into W/"...".
    client_etags = [tag.removeprefix("W/") for tag in parse_etags(header)]
    return etag in client_etags or "*" in client_etags


def polling_headers(job: Job | PolledJob, etag: str) -> dict[str, str]:
    """The headers every answer about ``job`` carries: ``ETag``, ``Cache-Control``, ``Retry-After`` while it runs."""
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if not job.is_terminal:
        headers["Retry-After"] = str(jobs_settings.RETRY_AFTER)
    return headers


def job_response(job: Job, request: Request, *, status: int = http_status.HTTP_200_OK) -> Response:
    """Answer with the job document, or 304 when ``If-None-Match`` already has it."""
    etag = job_etag(job)
    headers = polling_headers(job, etag)
    if status == http_status.HTTP_200_OK and request.method in ("GET", "HEAD") and not_modified(request, etag):
        # Decided before the document is built: a 304 costs one read of the row.
        return Response(status=http_status.HTTP_304_NOT_MODIFIED, headers=headers)
    document = JobSerializer(job, context={"request": request}).data
    return Response(document, status=status, headers=headers)


def job_accepted_response(job: Job, request: Request, *, replayed: bool = False) -> Response:
    """Answer a submission: 202, the job document, ``Location`` and ``Retry-After``."""
    response = job_response(job, request, status=http_status.HTTP_202_ACCEPTED)
    response["Location"] = job_location(job)
    response["Retry-After"] = str(jobs_settings.RETRY_AFTER)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response
