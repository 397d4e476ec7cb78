"""Price rounds: each active feed on its schedule, one round of a feed at a time.

Run it with ``python -m neosl_pricefeed.rounds``; any number of replicas may run. As with
the triggers' clock, the database is the schedule: a feed's next round is
``price_feeds.next_round_at``. Claiming a due feed (``FOR UPDATE SKIP LOCKED``) records its
round as ``running`` (unique per feed and slot) and moves ``next_round_at`` one period on
from the slot, not from when the round ends, so rounds do not drift; slots that passed while
no worker ran are not run late (the next slot is the first one after now). A feed whose
round is still running is not claimed again, so two rounds of one feed never overlap; a
round left running by a dead worker is failed after ``ABANDONED_AFTER``.

A round asks every source at once, each within ``NSL_PRICE_SOURCE_TIMEOUT_MS`` (a tenant's
generic ``{url, json_path, headers}`` source through the SSRF guard, with its secrets), drops the
failures and the outliers (``aggregate.reject_outliers``), and prices the feed if at least
``min_sources`` are left; else the round fails with the reasons. Either way the round keeps
what every source answered (value, latency, error or why it was rejected). A priced round
stores ``price_data``, asks the trigger-scheduler to evaluate the feed's price triggers and,
when it is due, queues its publication on chain (``publishing``). Rounds are not charged;
publications are.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client.registry import Collector
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs, logs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.exporter import Sources
from neosl.functions.netguard import Fetcher
from neosl.functions.secretbox import SecretUnreadable, granted_secrets
from neosl.models import PriceData, PriceFeed, PriceRound
from neosl.pricefeeds import definitions
from neosl.pricefeeds.metrics import PriceFeedCollector
from neosl.worker_main import run_loop
from neosl_pricefeed import aggregate, generic, publishing
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources import REGISTRY
from neosl_pricefeed.sources.base import BAD_RESPONSE, SourceError, fetch, new_client

log = logging.getLogger(__name__)

# A round still "running" this long after it started lost its worker.
ABANDONED_AFTER = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Claimed:
    round_id: int
    feed_id: int
    pair: str
    sources: list[dict[str, Any]]
    aggregation: str
    min_sources: int
    scheduled_at: dt.datetime
    user_id: int


def claim_due(session: Session, now: dt.datetime, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due feeds: record their rounds as running and move their next
    slot on; commits. Feeds another replica holds, or whose round still runs, are skipped."""
    session.execute(
        update(PriceRound)
        .where(PriceRound.status == "running", PriceRound.started_at < now - ABANDONED_AFTER)
        .values(status="failed", reason="worker lost: the round never finished", finished_at=now)
    )
    running = exists().where(PriceRound.feed_id == PriceFeed.id, PriceRound.status == "running")
    feeds = session.scalars(
        select(PriceFeed)
        .where(PriceFeed.status == "active", PriceFeed.next_round_at <= now, ~running)
        .order_by(PriceFeed.next_round_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=PriceFeed)
    ).all()
    claimed = []
    for feed in feeds:
        slot = feed.next_round_at
        assert slot is not None  # selected by next_round_at <= now
        period = dt.timedelta(seconds=feed.frequency)
        # The next slot on the schedule after now: late slots are not run late.
        behind = (now - slot) // period
        feed.next_round_at = slot + (behind + 1) * period
        current = slot + behind * period
        round_id = session.scalar(
            insert(PriceRound)
            .values(feed_id=feed.id, scheduled_at=current, started_at=now, status="running")
            .on_conflict_do_nothing(index_elements=["feed_id", "scheduled_at"])
            .returning(PriceRound.id)
        )
        if round_id is not None:
            claimed.append(
                Claimed(
                    round_id,
                    feed.id,
                    feed.asset_pair,
                    list(feed.sources),
                    feed.aggregation,
                    feed.min_sources,
                    current,
                    feed.user_id,
                )
            )
    session.commit()
    return claimed


@dataclass(frozen=True)
class Answer:
    source: str
    price: Decimal | None
    latency_ms: int | None
    error: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Askers:
    """What a round asks its sources with: the named sources' client, and the fetcher behind
    the SSRF guard that generic sources (URLs a tenant chose) go through."""

    client: httpx.Client
    fetcher: Fetcher
    pool: ThreadPoolExecutor


def generic_fetcher(settings: Settings) -> Fetcher:
    """The guarded fetcher of generic sources: the per-source timeout, and no redirects (a
    redirect to another origin would carry the tenant's secret headers along)."""
    return Fetcher(
        allow=settings.fetch_allow,
        timeout=settings.price_source_timeout_seconds,
        max_redirects=0,
    )


def ask_all(
    askers: Askers,
    settings: Settings,
    pair: str,
    sources: list[dict[str, Any]],
    secrets: Mapping[str, str] | None = None,
) -> list[Answer]:
    """Every source's answer for ``pair``, asked at once; failures are answers too.
    ``secrets``: the tenant's secrets its generic sources' headers name."""

    def ask(spec: dict[str, Any]) -> Answer:
        name = spec["name"]
        try:
            if definitions.is_generic(spec):
                quote = generic.ask(askers.fetcher, spec, pair, secrets or {})
            else:
                quote = fetch(
                    askers.client,
                    REGISTRY[name],
                    pair,
                    settings.price_source_url(name),
                    settings.price_source_timeout_seconds,
                )
        except SourceError as exc:
            return Answer(name, None, None, exc.message, exc.kind)
        return Answer(name, quote.price, quote.latency_ms)

    known = [s for s in sources if definitions.is_generic(s) or s["name"] in REGISTRY]
    return list(askers.pool.map(ask, known))


def tenant_secrets(
    session: Session, settings: Settings, user_id: int, names: set[str]
) -> tuple[dict[str, str], str | None]:
    """The tenant's secrets among ``names``, and an error when they cannot be read (the
    sources naming them then fail; the error names no value)."""
    try:
        return granted_secrets(session, settings.secrets_keys, user_id, names), None
    except SecretUnreadable as exc:
        log.error("price feed secrets of user %d: %s", user_id, exc)
        return {}, "the tenant's secrets cannot be read"


def price_round(
    claimed: Claimed, answers: list[Answer]
) -> tuple[Decimal | None, str | None, list[dict[str, Any]]]:
    """The price (or why there is none) and every source's record."""
    values = {a.source: a.price for a in answers if a.price is not None}
    records: dict[str, dict[str, Any]] = {
        a.source: {
            "source": a.source,
            "price": str(a.price) if a.price is not None else None,
            "latency_ms": a.latency_ms,
            "error": a.error,
            "error_kind": a.kind,
            "used": False,
        }
        for a in answers
    }
    kept: dict[str, Decimal] = {}
    if values:
        screened = aggregate.reject_outliers(values)
        kept = screened.kept
        for rejected in screened.rejected:
            records[rejected.source]["rejected"] = rejected.reason
    for name in kept:
        records[name]["used"] = True
    source_data = [records[a.source] for a in answers]
    if len(kept) < claimed.min_sources:
        failed = [a for a in answers if a.price is None]
        rejected_count = len(values) - len(kept)
        reason = (
            f"{len(kept)} of {len(answers)} sources usable, {claimed.min_sources} needed "
            f"({len(failed)} failed, {rejected_count} rejected as outliers)"
        )
        return None, reason, source_data
    weights = {
        s["name"]: Decimal(s["weight"]) for s in claimed.sources if s.get("weight") is not None
    }
    price = aggregate.aggregate(kept, claimed.aggregation, weights or None)
    return price, None, source_data


def finish(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    claimed: Claimed,
    price: Decimal | None,
    reason: str | None,
    source_data: list[dict[str, Any]],
) -> tuple[str, str | None] | None:
    """Store the round's outcome (its price, whether it is published); commits. Returns the
    round's status and publication decision.

    A round that is no longer running (failed as abandoned while its worker was slow) stores
    nothing (returns None): the feed has moved on, and its next round may be publishing
    already.
    """
    status = session.scalar(
        select(PriceRound.status).where(PriceRound.id == claimed.round_id).with_for_update()
    )
    if status != "running":
        log.warning(
            "round %d of feed %d ended after it was given up", claimed.round_id, claimed.feed_id
        )
        session.rollback()
        return None
    now = dt.datetime.now(dt.UTC)
    price_data_id = None
    publication: publishing.Decision | None = None
    used = sum(1 for r in source_data if r["used"])
    feed = session.get(PriceFeed, claimed.feed_id)
    if price is not None and feed is not None:
        row = PriceData(
            feed_id=claimed.feed_id,
            timestamp=now,
            price=price,
            sources_used=used,
            source_data=source_data,
        )
        session.add(row)
        session.flush()
        price_data_id = row.id
        dispatcher.send_after_commit(session, jobs.EVALUATE_PRICE_TRIGGERS, feed_id=claimed.feed_id)
        publication = publishing.decide(
            session, settings, dispatcher, feed, claimed.round_id, price, now
        )
    session.execute(
        update(PriceRound)
        .where(PriceRound.id == claimed.round_id)
        .values(
            status="priced" if price is not None else "failed",
            reason=reason,
            price=price,
            sources_used=used,
            source_data=source_data,
            price_data_id=price_data_id,
            finished_at=now,
            publication=publication.publication if publication else None,
            publication_reason=publication.reason if publication else None,
        )
    )
    session.commit()
    return ("priced" if price is not None else "failed"), (
        publication.publication if publication else None
    )


def run_round(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    askers: Askers,
    claimed: Claimed,
) -> tuple[str, str | None] | None:
    """Run one claimed round; its status and publication decision (None: given up)."""
    # The generic sources whose headers name secrets, by name: the database is asked only
    # for feeds that have some.
    naming = {
        s["name"]: definitions.secret_names(s) for s in claimed.sources if definitions.is_generic(s)
    }
    naming = {name: names for name, names in naming.items() if names}
    secrets: dict[str, str] = {}
    unreadable = None
    if naming:
        with sessions() as session:
            secrets, unreadable = tenant_secrets(
                session, settings, claimed.user_id, set().union(*naming.values())
            )
    answers = ask_all(askers, settings, claimed.pair, claimed.sources, secrets)
    if unreadable is not None:
        answers = [
            Answer(a.source, None, None, f"{a.source}: {unreadable}", BAD_RESPONSE)
            if a.source in naming
            else a
            for a in answers
        ]
    try:
        price, reason, source_data = price_round(claimed, answers)
    except aggregate.AggregationError as exc:
        price, reason, source_data = None, f"cannot aggregate: {exc}", []
    with sessions() as session:
        return finish(session, settings, dispatcher, claimed, price, reason, source_data)


def earliest(session: Session) -> dt.datetime | None:
    return session.scalar(
        select(func.min(PriceFeed.next_round_at)).where(PriceFeed.status == "active")
    )


class Rounds:
    """The loop; ``run`` returns when ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        dispatcher: Dispatcher,
        *,
        parallel: int = 32,
    ) -> None:
        # Generic sources may send tenants' secrets: fail at start, not in a round.
        settings.require_secrets_keys()
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.stop = threading.Event()
        self.parallel = parallel
        self.rounds = ThreadPoolExecutor(parallel, thread_name_prefix="round")
        self.askers = Askers(
            new_client(),
            generic_fetcher(settings),
            ThreadPoolExecutor(parallel * 4, thread_name_prefix="source"),
        )
        self.busy = threading.Semaphore(parallel)
        self.metrics = RoundMetrics()
        self.registries = [self.metrics.registry]

    def tick(self) -> float:
        """Start the due rounds (as many as there are free slots); seconds to sleep."""
        free = 0
        # Every slot busy: wait for one to free (a round ending) instead of polling.
        if self.busy.acquire(timeout=0.5):
            free = 1
            while self.busy.acquire(blocking=False):
                free += 1
        claimed: list[Claimed] = []
        try:
            if free:
                with self.sessions() as session:
                    claimed = claim_due(session, dt.datetime.now(dt.UTC), free)
        finally:
            for _ in range(free - len(claimed)):
                self.busy.release()
        for item in claimed:
            self.rounds.submit(self._run, item)
        with self.sessions() as session:
            next_at = earliest(session)
        wait = 0.5
        if next_at is not None:
            wait = min(wait, (next_at - dt.datetime.now(dt.UTC)).total_seconds())
        return max(wait, 0.0)

    def _run(self, claimed: Claimed) -> None:
        started = time.perf_counter()
        try:
            with logs.context(feed_id=claimed.feed_id):
                outcome = run_round(
                    self.sessions, self.settings, self.dispatcher, self.askers, claimed
                )
        except Exception:
            log.exception("price round %d of feed %d failed", claimed.round_id, claimed.feed_id)
            self._fail(claimed)
            outcome = ("failed", None)
        finally:
            self.busy.release()
        if outcome is not None:
            status, publication = outcome
            self.metrics.rounds.labels(status).inc()
            self.metrics.duration.observe(time.perf_counter() - started)
            if publication is not None:
                self.metrics.publications.labels(publication).inc()

    def _fail(self, claimed: Claimed) -> None:
        # Else the feed would wait for the round to count as abandoned.
        try:
            with self.sessions() as session:
                session.execute(
                    update(PriceRound)
                    .where(PriceRound.id == claimed.round_id, PriceRound.status == "running")
                    .values(
                        status="failed",
                        reason="internal error",
                        finished_at=dt.datetime.now(dt.UTC),
                    )
                )
                session.commit()
        except DBAPIError:
            log.exception("could not mark round %d failed", claimed.round_id)

    def run(self) -> None:
        log.info("price rounds started")
        while not self.stop.is_set():
            try:
                wait = self.tick()
            except DBAPIError as exc:
                log.warning("rounds: database error, retrying in 1 s: %s", exc.orig)
                wait = 1.0
            self.stop.wait(wait)
        self.rounds.shutdown(wait=True)
        self.askers.pool.shutdown(wait=True)
        self.askers.client.close()
        self.askers.fetcher.close()
        log.info("price rounds stopped")


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the rounds process exports besides its own counts: the feeds' state."""
    return [PriceFeedCollector(sources.sessions)]


def main() -> int:
    return run_loop("neosl_pricefeed.rounds", Rounds, pool_size=8, collectors=collectors)


if __name__ == "__main__":
    sys.exit(main())
