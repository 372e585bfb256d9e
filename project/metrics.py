"""``/metrics`` for Prometheus: job metrics, HTTP metrics and the process's own, behind a token.

Job metrics are read from the database at scrape time (``jobs.metrics``).
HTTP metrics are counted by ``http_metrics`` in each web process; with
``PROMETHEUS_MULTIPROC_DIR`` set (the same empty directory for all the web
processes of a machine, emptied before they start), prometheus_client keeps
them in files there and any one process's scrape adds up all of them. The
process metrics (CPU, memory, open files) are those of the process that
answered.

The endpoint is not public: without ``METRICS_TOKEN`` set, and for any
request without ``Authorization: Bearer <METRICS_TOKEN>`` (or from an address
outside ``METRICS_ALLOWED_ADDRESSES``, when that is set), it is a plain 404,
like a URL that does not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Iterator
from typing import Any, Callable

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from jobs.metrics import JobCollector

# The HTTP metrics live in their own registry, not prometheus_client's global one.
_HTTP = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "http_requests", "HTTP requests answered, by method, view and status.",
    ["method", "view", "status"], registry=_HTTP,
)  # fmt: skip
DURATION = Histogram(
    "http_request_duration_seconds",
    "Seconds from the request to the response's headers (a stream's body is not timed), by method and view.",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=_HTTP,
)
# A request that matched no URL: one label value, not one per path a client tries.
UNMATCHED = "<unmatched>"


def _observe(request: HttpRequest, response: HttpResponse, started: float) -> None:
    match = getattr(request, "resolver_match", None)
    view = (match.view_name or match.route or UNMATCHED) if match else UNMATCHED
    REQUESTS.labels(request.method, view, str(response.status_code)).inc()
    DURATION.labels(request.method, view).observe(time.perf_counter() - started)


@sync_and_async_middleware
def http_metrics(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Count every request and time it (``http_requests_total``, ``http_request_duration_seconds``)."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            started = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, started)
            return response

    else:

        def middleware(request: HttpRequest) -> HttpResponse:  # type: ignore[misc]
            started = time.perf_counter()
            response = get_response(request)
            _observe(request, response, started)
            return response

    return middleware


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _Scrape:
    """What one scrape reports: the jobs, HTTP (this process's, or the machine's), this process."""

    def collect(self) -> Iterator[Metric]:
        yield from JobCollector().collect()
        if _multiprocess():
            yield from MultiProcessCollector(None).collect()
        else:
            yield from _HTTP.collect()
        yield from ProcessCollector(registry=None).collect()
        yield from PlatformCollector(registry=None).collect()


def _allowed_address(request: HttpRequest) -> bool:
    allowed = settings.METRICS_ALLOWED_ADDRESSES
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in allowed)


def _authorised(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
        and _allowed_address(request)
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Answer a Prometheus scrape that carries the metrics token; 404 to anything else."""
    if request.method not in ("GET", "HEAD") or not _authorised(request):
        raise Http404
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST)  # type: ignore[arg-type]
