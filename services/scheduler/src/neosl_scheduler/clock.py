"""The clock: fires cron triggers at their slots and checks price triggers periodically.

Run it with ``python -m neosl_scheduler.clock``; any number of replicas may run. The
database is the only source of truth: each cron trigger's next slot is
``triggers.next_fire_at``. A pass locks the due rows (``FOR UPDATE SKIP LOCKED``, so
replicas share the work and never take the same row), fires them through
``neosl.triggers.firing`` (unique per ``cron:<slot>``), moves each row's ``next_fire_at`` past now
and commits, all in one transaction. A clock killed mid-pass rolls back and the next pass
(of any replica) does the same work again; nothing fires twice and no slot is lost.

Slots missed while no clock ran (or a trigger's slots fell behind): the most recent missed
slot fires; the earlier ones are recorded as ``skipped`` (at most ``MAX_SKIPPED_EVENTS`` of
them per pass; the fired event's cause counts them all as ``missed``).

Between passes the clock sleeps until the earliest ``next_fire_at``, at most
``NSL_CRON_POLL_MS``, so new and changed triggers are noticed within that time. A pass that
finds no slot due reads only that earliest slot (one statement); it locks rows only when
one is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import Trigger
from neosl.triggers import firing, rules
from neosl.triggers.cron import CronError
from neosl.worker_main import run_loop
from neosl_scheduler import prices
from neosl_scheduler.metrics import ClockMetrics

log = logging.getLogger(__name__)

MAX_SKIPPED_EVENTS = 100
# Slots walked through per trigger and pass at most (a trigger every 10 s, 11 days late).
_MAX_SLOTS = 100_000


@dataclass
class CronPass:
    triggers: int = 0
    fired: int = 0
    skipped: int = 0
    # Seconds from each fired slot to its commit (the fire lag).
    lags: list[float] = field(default_factory=list)


# Every fired trigger's next slot in one statement.
_MOVE = text(
    "UPDATE triggers SET next_fire_at = m.next"
    " FROM jsonb_to_recordset(CAST(:moves AS jsonb)) AS m(id int, next timestamptz)"
    " WHERE triggers.id = m.id"
)


def _missed_reason(latest: dt.datetime) -> str:
    return f"missed: no scheduler ran at this slot; the latest slot ({latest.isoformat()}) fired"


def fire_due_cron(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    now: dt.datetime,
    *,
    batch: int | None = None,
) -> CronPass:
    """Fire up to ``batch`` cron triggers whose slot has come, and commit.

    Each trigger fires its most recent due slot; earlier due slots are recorded as skipped.
    """
    rows = session.execute(
        select(Trigger.id, Trigger.trigger_config, Trigger.next_fire_at)
        .where(
            Trigger.trigger_type == "cron",
            Trigger.status == "active",
            Trigger.next_fire_at <= now,
        )
        .order_by(Trigger.next_fire_at)
        .limit(batch or settings.cron_batch)
        .with_for_update(skip_locked=True)
    ).all()
    result = CronPass(triggers=len(rows))
    if not rows:
        session.rollback()
        return result
    causes: list[firing.Cause] = []
    moves: list[dict[str, Any]] = []
    for trigger_id, config, first in rows:
        due = [first]
        following: dt.datetime | None
        try:
            following = rules.next_slot(config, first)
            while following <= now and len(due) < _MAX_SLOTS:
                due.append(following)
                following = rules.next_slot(config, following)
        except CronError:
            following = None  # no slot in the next 29 years: it never comes due again
        latest = due[-1]
        missed = len(due) - 1
        base = {
            "type": "cron",
            "trigger_id": trigger_id,
            "schedule": config["schedule"],
            "timezone": config.get("timezone", "UTC"),
        }
        for slot in due[-1 - MAX_SKIPPED_EVENTS : -1]:
            causes.append(
                firing.Cause(
                    trigger_id,
                    f"cron:{slot.isoformat()}",
                    {**base, "slot": slot.isoformat()},
                    skip=_missed_reason(latest),
                )
            )
        detail = {**base, "slot": latest.isoformat(), "missed": missed}
        causes.append(firing.Cause(trigger_id, f"cron:{latest.isoformat()}", detail))
        moves.append(
            {"id": trigger_id, "next": following.isoformat() if following is not None else None}
        )
    outcomes = firing.fire(session, settings, dispatcher, causes)
    session.execute(_MOVE, {"moves": json.dumps(moves, separators=(",", ":"))})
    session.commit()
    committed = dt.datetime.now(dt.UTC)
    for cause, outcome in zip(causes, outcomes, strict=True):
        if not outcome.new:
            continue
        if outcome.status == "fired":
            result.fired += 1
            slot = dt.datetime.fromisoformat(cause.detail["slot"])
            result.lags.append((committed - slot).total_seconds())
        elif outcome.status == "skipped":
            result.skipped += 1
    return result


def earliest_slot(session: Session) -> dt.datetime | None:
    return session.scalar(
        select(func.min(Trigger.next_fire_at)).where(
            Trigger.trigger_type == "cron", Trigger.status == "active"
        )
    )


class Clock:
    """The loop; ``run`` returns when ``stop`` is set."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher):
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.stop = threading.Event()
        self.next_price_check = 0.0
        self.fired = 0
        self.metrics = ClockMetrics()
        self.registries = [self.metrics.registry]

    def tick(self) -> float:
        """One round: fire what is due, check prices if it is time. Seconds to sleep."""
        with self.sessions() as session:
            earliest = earliest_slot(session)
        if earliest is not None and earliest <= dt.datetime.now(dt.UTC):
            self.fire_due()
            with self.sessions() as session:
                earliest = earliest_slot(session)
        if time.monotonic() >= self.next_price_check:
            with self.sessions() as session:
                prices.evaluate(session, self.settings, self.dispatcher, dt.datetime.now(dt.UTC))
                session.commit()
            self.next_price_check = time.monotonic() + self.settings.price_check_seconds
        wait = self.settings.cron_poll_seconds
        if earliest is not None:
            wait = min(wait, (earliest - dt.datetime.now(dt.UTC)).total_seconds())
        wait = min(wait, self.next_price_check - time.monotonic())
        return max(wait, 0.0)

    def fire_due(self) -> None:
        """Fire every due slot, a batch per transaction."""
        while True:
            with self.sessions() as session:
                done = fire_due_cron(
                    session, self.settings, self.dispatcher, dt.datetime.now(dt.UTC)
                )
            self.fired += done.fired
            self.metrics.fired.inc(done.fired)
            self.metrics.skipped.inc(done.skipped)
            for lag in done.lags:
                self.metrics.lag.observe(lag)
            if done.lags:
                log.info(
                    "fired %d cron triggers (%d skipped slots), lag max %.3f s",
                    done.fired,
                    done.skipped,
                    max(done.lags),
                )
            if done.triggers < self.settings.cron_batch:
                break

    def run(self) -> None:
        log.info("clock started")
        while not self.stop.is_set():
            try:
                wait = self.tick()
            except DBAPIError as exc:
                # The database is away: try again shortly (nothing was half done).
                log.warning("clock: database error, retrying in 1 s: %s", exc.orig)
                wait = 1.0
            self.stop.wait(wait)
        log.info("clock stopped")


def main() -> int:
    return run_loop("neosl_scheduler.clock", Clock, pool_size=2)


if __name__ == "__main__":
    sys.exit(main())
