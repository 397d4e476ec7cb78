"""Metrics a process counts itself (tasks run, requests served, triggers fired, rounds).

Each set has its own registry: nothing is registered globally at import time. A process
exports its own sets (``exported``), or, where it forks (gunicorn's workers, Celery's
prefork pool), those of every process of its tree: under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's own variable, set before the process starts) each process writes its
counts to files there and the exporter adds them up. Give each container or process tree
a directory of its own.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> None:
    """Create the directory of ``PROMETHEUS_MULTIPROC_DIR`` if it is set and missing."""
    path = os.environ.get(MULTIPROC_DIR)
    if path:
        os.makedirs(path, exist_ok=True)


def exported(own: list[CollectorRegistry], collectors: list[Collector]) -> CollectorRegistry:
    """What a process serves on /metrics: its own counts (or, under
    ``PROMETHEUS_MULTIPROC_DIR``, its process tree's) and the scrape-time ``collectors``."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(MULTIPROC_DIR)
    if path:
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        for counted in own:
            registry.register(counted)
    for collector in collectors:
        registry.register(collector)
    return registry


OUTCOMES = ("succeeded", "retried", "failed")


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "neosl_task_runs",
            "Task runs by task name and outcome (succeeded, retried, failed).",
            ["task", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "neosl_task_duration_seconds",
            "Time one run of a task took, by task name and outcome.",
            ["task", "outcome"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

    def observe(self, task: str, outcome: str, seconds: float) -> None:
        self.runs.labels(task, outcome).inc()
        self.duration.labels(task, outcome).observe(seconds)

    def count(self, task: str, outcome: str) -> int:
        """Runs so far of ``task`` that ended with ``outcome`` (for checks and tests)."""
        value = self.registry.get_sample_value(
            "neosl_task_runs_total", {"task": task, "outcome": outcome}
        )
        return int(value or 0)


# Seconds; requests of the API, rounds of a price feed.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


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


class ClockMetrics:
    """The clock: cron slots fired and skipped, and how late each fired."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fired = Counter("neosl_triggers_fired", "Cron slots fired", registry=self.registry)
        self.skipped = Counter(
            "neosl_trigger_slots_skipped",
            "Cron slots skipped (missed while no clock ran)",
            registry=self.registry,
        )
        self.lag = Histogram(
            "neosl_trigger_fire_lag_seconds",
            "From a cron slot to the commit that fired it",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )


class RoundMetrics:
    """Price rounds by outcome, their duration and what was decided about publishing."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rounds = Counter(
            "neosl_price_rounds",
            "Price rounds finished, by status (priced, failed)",
            ["status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "neosl_price_round_duration_seconds",
            "Time one price round took",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.publications = Counter(
            "neosl_price_round_publications",
            "Priced rounds by publication decision (queued, skipped, unpaid, not_due)",
            ["publication"],
            registry=self.registry,
        )


class RelayMetrics:
    """Relayed transactions (actions and withdrawals) settled, by kind and outcome."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.settled = Counter(
            "neosl_relay_settled",
            "Relayed transactions settled from the chain, by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
