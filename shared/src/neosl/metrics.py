"""Metrics every worker process keeps about its tasks, for the operations exporter.

One ``TaskMetrics`` per Celery app (made by ``neosl.celery_app.make_celery``), each with its
own registry: nothing is registered globally at import time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
