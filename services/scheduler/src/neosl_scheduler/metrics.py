"""What the scheduler counts (cron slots fired) and its triggers by type and status."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.metrics import ScrapeTimeCollector
from neosl.models import Trigger, TriggerEvent
from neosl.triggers import firing

log = logging.getLogger(__name__)


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


TRIGGER_TYPES = ("cron", "price", "blockchain", "webhook")


# The window of ``neosl_trigger_events_recent``.
RECENT_MINUTES = 15


class TriggerCollector(ScrapeTimeCollector):
    """Triggers by type and status, and their recent events by type, status and reason (a
    trigger that did not run says why: ``insufficient_funds``, ``function_paused``, …)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.session_factory() as session:
                rows = session.execute(
                    select(Trigger.trigger_type, Trigger.status, func.count()).group_by(
                        Trigger.trigger_type, Trigger.status
                    )
                ).all()
                why = firing.reason_kind(TriggerEvent.reason)
                recent = session.execute(
                    select(Trigger.trigger_type, TriggerEvent.status, why, func.count())
                    .join(Trigger, Trigger.id == TriggerEvent.trigger_id)
                    .where(
                        TriggerEvent.timestamp
                        > func.now() - func.make_interval(0, 0, 0, 0, 0, RECENT_MINUTES)
                    )
                    .group_by(Trigger.trigger_type, TriggerEvent.status, why)
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        events = GaugeMetricFamily(
            "neosl_trigger_events_recent",
            f"Trigger events of the last {RECENT_MINUTES} minutes, by trigger type, status "
            "(fired, skipped, failed) and why one did not fire (reason)",
            labels=["type", "status", "reason"],
        )
        for kind, status, reason, n in recent:
            events.add_metric([kind, status, reason], n)
        yield events
        counts = {(kind, status): n for kind, status, n in rows}
        family = GaugeMetricFamily(
            "neosl_triggers", "Triggers, by type and status", labels=["type", "status"]
        )
        for kind in TRIGGER_TYPES:
            for status in ("active", "paused"):
                family.add_metric([kind, status], counts.get((kind, status), 0))
        yield family
