"""What the pricefeed service counts: rounds by outcome, their duration, publication decisions."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram

from neosl.metrics import LATENCY_BUCKETS

log = logging.getLogger(__name__)


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
