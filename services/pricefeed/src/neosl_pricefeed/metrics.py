"""What the pricefeed service counts: rounds by outcome, their duration, publication
decisions (the worker), and rounds queued (the clock)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from neosl.metrics import LATENCY_BUCKETS


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

    def finished(self, status: str, publication: str | None, seconds: float) -> None:
        """Count a round that ended ``status``, after ``seconds``, with its publication
        decision (None: not priced)."""
        self.rounds.labels(status).inc()
        self.duration.observe(seconds)
        if publication is not None:
            self.publications.labels(publication).inc()


class ClockMetrics:
    """Price rounds the clock queued."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.scheduled = Counter(
            "neosl_price_rounds_scheduled",
            "Price rounds the clock queued for the pricefeed worker",
            registry=self.registry,
        )
