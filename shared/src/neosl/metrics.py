"""Metrics a process counts itself (tasks run, requests served, triggers fired, rounds).

Each set has its own registry: nothing is registered globally at import time. A process
exports its own sets (``exported``), or, where it forks (gunicorn's workers, Celery's
prefork pool), those of every process of its tree: under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's own variable, set before the process starts) each process writes its
counts to files there and the exporter adds them up. Give each container or process tree
a directory of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import Redis, RedisError

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Scrape-time figures that read a whole table are read at most this often per process and
# exported from memory in between: a scrape (or a burst of them) costs the database little.
AGGREGATES_EVERY_SECONDS = 15.0


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


class AtMostEvery[T]:
    """The last value ``read`` gave, read again only once ``seconds`` have passed (for
    figures too costly to read at every scrape); scrapes in between wait for a read under
    way instead of starting their own."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._value: T | None = None
        self._read_at = -seconds
        self._lock = threading.Lock()

    def get(self, read: Callable[[], T | None]) -> T | None:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.seconds:
                self._value = read()
                self._read_at = now
            return self._value


class ScrapeTimeCollector(Collector):
    """A collector whose figures are read at each scrape: nothing to describe beforehand
    (the registry would otherwise query the sources when it is built)."""

    def describe(self) -> list[Any]:
        return []


class QueueCollector(ScrapeTimeCollector):
    """How many jobs wait in each of ``queues`` (the Redis lists Celery reads)."""

    def __init__(self, redis: Redis, queues: tuple[str, ...]) -> None:
        self.redis = redis
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for queue in self.queues:
                pipe.llen(queue)
            lengths = pipe.execute()
        except RedisError as exc:
            log.warning("metrics: redis unreachable: %s", exc)
            return
        family = GaugeMetricFamily(
            "neosl_queue_length", "Jobs waiting in a queue", labels=["queue"]
        )
        for queue, length in zip(self.queues, lengths, strict=True):
            family.add_metric([queue], length)
        yield family
