"""HTTP metrics, the request access log and the web app's `/metrics` endpoint.

Requests are counted by URL route (the pattern, e.g. `/v1/result/<uuid:id>`),
never by raw path, so the number of series stays bounded whatever clients send.

Under gunicorn every worker process has its own counters. When
`PROMETHEUS_MULTIPROC_DIR` is set (before the process starts) prometheus-client
keeps them in files in that directory, and `/metrics` adds up all processes'
files; gunicorn's config (`deploy/gunicorn.conf.py`) empties the directory at
start-up and marks exited workers dead. Without it, `/metrics` shows the
answering process's own registry, which is right for a single process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

from config.logging import log_context

# Imported for its side effect: the task layer's metrics are registered, so the
# web app's `/metrics` shows them (e.g. jobs enqueued) even before a publish.
from queueing import metrics as queue_metrics  # noqa: F401

access_logger = logging.getLogger("config.access")

UNMATCHED_ROUTE = "<unmatched>"
# Probes hit these every few seconds; their successes are counted, not logged.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
)
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, URL route and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and URL route.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)


def request_route(request: HttpRequest) -> str:
    """The URL pattern that matched the request, or a fixed label when none did."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return "/" + match.route.lstrip("^").rstrip("$")


def request_method(request: HttpRequest) -> str:
    method = (request.method or "").upper()
    return method if method in KNOWN_METHODS else "OTHER"


class PrometheusMiddleware:
    """Counts and times every request; writes one access-log line per request.

    First in `MIDDLEWARE` so the duration covers the whole stack. Errors raised
    by views reach it as 500 responses (Django converts them per middleware).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        method, route = request_method(request), request_route(request)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(duration)
        if route in QUIET_ROUTES and response.status_code < 400:
            return response
        # The request id middleware has left the log context by now; the id
        # stays on the request.
        with log_context(request_id=getattr(request, "request_id", None)):
            access_logger.info(
                "%s %s %s %.1fms",
                method,
                route,
                response.status_code,
                duration * 1000,
                extra={
                    "http_method": method,
                    "http_route": route,
                    "http_status": response.status_code,
                    "duration_ms": round(duration * 1000, 1),
                },
            )
        return response


def metrics_registry() -> CollectorRegistry:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition format; no authentication, like `/healthz`.

    The format follows the scraper's Accept header (text 0.0.4 or 1.0.0,
    OpenMetrics), as prometheus-client's own HTTP server does.
    """
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(metrics_registry()), content_type=content_type)
