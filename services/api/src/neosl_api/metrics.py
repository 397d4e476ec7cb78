"""The API's requests by route template."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram

from neosl.metrics import LATENCY_BUCKETS

log = logging.getLogger(__name__)


class HttpMetrics:
    """The API's requests by route template (never the raw path: no ids, no tokens)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "neosl_http_requests",
            "API requests, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "neosl_http_request_duration_seconds",
            "Time the API took to answer, by method and route",
            ["method", "route"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)
