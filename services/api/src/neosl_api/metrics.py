"""What the API exports: its requests by route template (counted by every gunicorn worker)
and a summary of the system read at scrape time (``collectors``), served by the gunicorn
master on the metrics port (``neosl_api.serving``), never on the public API port."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.registry import Collector

from neosl.config import Settings
from neosl.exporter import Sources
from neosl.functions.metrics import ExecutionCollector
from neosl.gas.metrics import BankCollector
from neosl.metrics import LATENCY_BUCKETS
from neosl.onchain.metrics import FollowerCollector
from neosl.pricefeeds.metrics import PriceFeedCollector

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


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """The system's figures the API exports beside its requests: the chain follower, the
    gas bank's balances (its books are the gasbank's to export: they read every row),
    executions and sandboxes, price feeds."""
    return [
        FollowerCollector(sources.sessions),
        BankCollector(sources.sessions, books=False),
        ExecutionCollector(sources.sessions, sources.redis),
        PriceFeedCollector(sources.sessions),
    ]
