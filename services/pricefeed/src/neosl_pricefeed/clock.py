"""The pricefeed clock: queues each active feed's rounds on its schedule, one at a time.

Run it with ``python -m neosl_pricefeed.clock``; any number of replicas may run. The clock
only schedules: the pricefeed worker (``python -m neosl_pricefeed``) runs each round from
its queue (``jobs.RUN_ROUND``, ``neosl_pricefeed.pricing``), so that Flower shows the rounds
like any other task and KEDA scales the worker on the queue's depth. The clock holds no
secrets key and talks to no price source.

As with the triggers' clock, the database is the schedule: a feed's next round is
``price_feeds.next_round_at``. Claiming a due feed (``FOR UPDATE SKIP LOCKED``) records its
round as ``queued`` (unique per feed and slot) and moves ``next_round_at`` one period on
from the slot, not from when the round ends, so rounds do not drift; slots that passed while
no clock ran are not run late (the next slot is the first one after now). The round's
``RUN_ROUND`` is sent once that transaction commits. A feed whose round is still in
progress (queued or running) is not claimed again, so two rounds of one feed never
overlap; a round left in progress for ``ABANDONED_AFTER`` (its worker died, or no worker
took its message) is failed, and the feed goes on.

Between passes the clock sleeps until the earliest ``next_round_at``, at most 0.5 s, so new
and resumed feeds are noticed within that time. A pass that finds no feed due reads only
that earliest slot (one statement): it claims, and fails abandoned rounds, only when a feed
is due, and at least every ``SWEEP_SECONDS`` for abandoned rounds of feeds that are not.

Every ``RESUME_SECONDS`` it also resumes, in one statement, the feeds the pricefeed worker
paused because their owner could not pay a round (``paused_reason`` ``insufficient_funds``)
whose owner's default account now covers one of their rounds; their next round is due at
once. A feed its owner paused is never resumed here.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from dataclasses import dataclass

from sqlalchemy import case, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import GasAccount, PriceFeed, PriceRound
from neosl.pricefeeds import billing
from neosl.worker_main import run_loop
from neosl_pricefeed import listings
from neosl_pricefeed.metrics import ClockMetrics

log = logging.getLogger(__name__)

# A round still queued or running this long after it was queued or started lost its worker
# (or its message): it is failed, and the feed's next slot may be claimed.
ABANDONED_AFTER = dt.timedelta(minutes=2)
# Feeds claimed per transaction; a pass claims batches until fewer are due.
BATCH = 200
# The longest sleep between passes: how soon a new or resumed feed is noticed.
POLL_SECONDS = 0.5
# How often the clock looks for market lists due a refresh (each is due every
# NSL_PRICE_LISTING_REFRESH_SECONDS).
LISTINGS_SECONDS = 10.0
# How often feeds paused for want of funds are resumed if their owners can pay again.
RESUME_SECONDS = 5.0
# How often a pass claims (and fails abandoned rounds) even with no feed due: a round of a
# feed paused or deleted since is failed within ABANDONED_AFTER plus this.
SWEEP_SECONDS = 30.0
IN_PROGRESS = ("queued", "running")

NOT_TAKEN = "never started: no pricefeed worker took it in time"
LOST = "worker lost: the round never finished"


@dataclass(frozen=True)
class Scheduled:
    """A round the clock queued."""

    round_id: int
    feed_id: int
    scheduled_at: dt.datetime


def give_up_abandoned(session: Session, now: dt.datetime) -> None:
    """Fail the rounds in progress for longer than ``ABANDONED_AFTER`` (not committed)."""
    session.execute(
        update(PriceRound)
        .where(
            PriceRound.status.in_(IN_PROGRESS),
            PriceRound.started_at < now - ABANDONED_AFTER,
        )
        .values(
            status="failed",
            reason=case((PriceRound.status == "queued", NOT_TAKEN), else_=LOST),
            finished_at=now,
        )
    )


# Claiming in one statement: the due feeds, locked (replicas skip each other's), each one's
# next slot moved on and its round recorded, whatever their number. A feed's current slot is
# the last one not after now (late slots are not run late), its next one a period later.
_CLAIM = text(
    """
WITH due AS (
    SELECT f.id, f.next_round_at
               + make_interval(secs => f.frequency
                   * floor(extract(epoch FROM CAST(:now AS timestamptz) - f.next_round_at)
                           / f.frequency)) AS slot,
           f.frequency
    FROM price_feeds f
    WHERE f.status = 'active' AND f.next_round_at <= :now
      AND NOT EXISTS (SELECT 1 FROM price_rounds r
                      WHERE r.feed_id = f.id AND r.status = ANY(:in_progress))
    ORDER BY f.next_round_at
    LIMIT :limit
    FOR UPDATE OF f SKIP LOCKED
), moved AS (
    UPDATE price_feeds f SET next_round_at = due.slot + make_interval(secs => due.frequency)
    FROM due WHERE f.id = due.id
    RETURNING f.id, due.slot
)
INSERT INTO price_rounds (feed_id, scheduled_at, started_at, status)
SELECT id, slot, :now, 'queued' FROM moved
ORDER BY slot, id
ON CONFLICT (feed_id, scheduled_at) DO NOTHING
RETURNING id, feed_id, scheduled_at
"""
)


def claim_due(
    session: Session, dispatcher: Dispatcher, now: dt.datetime, limit: int = BATCH
) -> list[Scheduled]:
    """Claim up to ``limit`` due feeds: record each one's round as queued, move its next slot
    on, and send the round's ``RUN_ROUND`` once this commits; commits. Feeds another replica
    holds, or whose round is still in progress, are skipped. Abandoned rounds are failed
    first."""
    give_up_abandoned(session, now)
    params = {"now": now, "limit": limit, "in_progress": list(IN_PROGRESS)}
    rows = session.execute(_CLAIM, params).all()
    scheduled = sorted(
        (Scheduled(r.id, r.feed_id, r.scheduled_at) for r in rows),
        key=lambda s: (s.scheduled_at, s.round_id),
    )
    dispatcher.send_many_after_commit(
        session, jobs.RUN_ROUND, [{"round_id": s.round_id} for s in scheduled]
    )
    session.commit()
    return scheduled


def resume_funded(session: Session, settings: Settings, now: dt.datetime) -> list[int]:
    """Resume the feeds paused for want of funds whose owner's default account covers one
    of their rounds now (``billing.round_cost`` of the feed's sources), their next round due
    at ``now``: one statement; commits. Returns their ids.

    The balance is read without a lock: a feed resumed on a balance that is spent before its
    round is claimed is paused again by that round, having asked nothing.
    """
    balance = (
        select(GasAccount.balance)
        .where(
            GasAccount.user_id == PriceFeed.user_id,
            GasAccount.is_default,
            GasAccount.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    resumed = session.scalars(
        update(PriceFeed)
        .where(
            PriceFeed.status == "paused",
            PriceFeed.paused_reason == billing.UNPAID,
            func.coalesce(balance, 0) >= billing.round_cost_sql(settings),
        )
        .values(status="active", paused_reason=None, next_round_at=now)
        .returning(PriceFeed.id)
    ).all()
    session.commit()
    return list(resumed)


def earliest(session: Session, after: dt.datetime | None = None) -> dt.datetime | None:
    """The earliest next slot of an active feed, or the earliest later than ``after`` (the
    time of the last claim). Feeds due before it and still unclaimed are in progress or
    another replica's: they are looked at again at the next poll, not in a busy loop."""
    query = select(func.min(PriceFeed.next_round_at)).where(PriceFeed.status == "active")
    if after is not None:
        query = query.where(PriceFeed.next_round_at > after)
    return session.scalar(query)


class Clock:
    """The loop; ``run`` returns when ``stop`` is set."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.stop = threading.Event()
        self.metrics = ClockMetrics()
        self.registries = [self.metrics.registry]
        self.next_resume = 0.0  # time.monotonic() of the next resume_funded pass
        self.next_sweep = 0.0  # time.monotonic() of the next claim with no feed due
        self.next_listings = 0.0  # time.monotonic() of the next look for due market lists

    def tick(self) -> float:
        """Resume the feeds whose owners can pay again (every ``RESUME_SECONDS``), queue the
        due rounds; seconds to sleep."""
        if time.monotonic() >= self.next_resume:
            with self.sessions() as session:
                resumed = resume_funded(session, self.settings, dt.datetime.now(dt.UTC))
            if resumed:
                log.info("resumed price feeds %s: their owners can pay a round again", resumed)
            self.next_resume = time.monotonic() + RESUME_SECONDS
        if time.monotonic() >= self.next_listings:
            with self.sessions() as session:
                self.queue_listings(session)
            self.next_listings = time.monotonic() + LISTINGS_SECONDS
        now = dt.datetime.now(dt.UTC)
        with self.sessions() as session:
            next_at = earliest(session)
        if (next_at is not None and next_at <= now) or time.monotonic() >= self.next_sweep:
            self.next_sweep = time.monotonic() + SWEEP_SECONDS
            while True:
                now = dt.datetime.now(dt.UTC)
                with self.sessions() as session:
                    done = claim_due(session, self.dispatcher, now)
                self.metrics.scheduled.inc(len(done))
                if len(done) < BATCH:
                    break
            with self.sessions() as session:
                next_at = earliest(session, now)
        wait = POLL_SECONDS
        if next_at is not None:
            wait = min(wait, (next_at - dt.datetime.now(dt.UTC)).total_seconds())
        return max(wait, 0.0)

    def queue_listings(self, session: Session) -> None:
        """Queue a refresh of every source's market list that is due (``listings.due``)."""
        names = listings.due(session, self.settings, dt.datetime.now(dt.UTC))
        for name in names:
            self.dispatcher.send(jobs.REFRESH_LISTING, source=name)
        if names:
            log.info("market lists due: %s", ", ".join(names))

    def run(self) -> None:
        log.info("pricefeed clock started")
        while not self.stop.is_set():
            try:
                wait = self.tick()
            except DBAPIError as exc:
                # The database is away: try again shortly (nothing was half done).
                log.warning("pricefeed clock: database error, retrying in 1 s: %s", exc.orig)
                wait = 1.0
            self.stop.wait(wait)
        log.info("pricefeed clock stopped")


def main() -> int:
    return run_loop("neosl_pricefeed.clock", Clock, pool_size=2)


if __name__ == "__main__":
    sys.exit(main())
