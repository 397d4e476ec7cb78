"""One price round, run by the pricefeed worker when its ``RUN_ROUND`` message arrives.

The clock (``neosl_pricefeed.clock``) records a due slot's round as ``queued`` and sends its
id. The worker claims it first, in one statement (``queued`` -> ``running``): Celery
acknowledges a message only after its task ran, so a worker killed mid-round has its message
delivered again, and the claim makes that second delivery do nothing. A slot's round runs at
most once.

The claim's transaction also charges the round to its feed's owner, before any source is
asked (``neosl.pricefeeds.billing``: a fee per round plus one per source, type
``pricefeed``, reference ``round:<id>``: once, whatever the deliveries). An owner who cannot
pay gets no round: it ends ``failed`` (reason ``insufficient_funds: …``), no source is
asked, and the feed is paused for want of funds until the clock sees the owner's default
account cover a round again.

A round asks every source at once, each within ``NSL_PRICE_SOURCE_TIMEOUT_MS`` (a tenant's
generic ``{url, json_path, headers}`` source through the SSRF guard, with its secrets), drops
the failures and the outliers (``aggregate.reject_outliers``), and prices the feed if at least
``min_sources`` are left; else the round fails with the reasons. Either way the round keeps
what every source answered (value, latency, error or why it was rejected). A priced round
stores ``price_data``, asks the trigger-scheduler to evaluate the feed's price triggers and,
when it is due, queues its publication on chain (``publishing``). The round was paid for;
the publication (by the relay, NSL_PRICEFEED_SERVICE_FEE plus chain fees) is charged apart.

A round the clock gave up on (left running too long, ``clock.ABANDONED_AFTER``) stores
nothing when its slow worker finishes after all: the feed has moved on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs, logs
from neosl.config import Settings
from neosl.db import ride_out
from neosl.dispatch import Dispatcher
from neosl.functions.netguard import Fetcher
from neosl.functions.secretbox import SecretUnreadable, granted_secrets
from neosl.gas import ledger
from neosl.models import PriceData, PriceFeed, PriceRound
from neosl.pricefeeds import billing, definitions, reports
from neosl_pricefeed import aggregate, generic, publishing
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources import REGISTRY
from neosl_pricefeed.sources.base import BAD_RESPONSE, SourceError, fetch

log = logging.getLogger(__name__)

# The round's statements update rows no session here has loaded: nothing to synchronise
# (evaluating their criteria in Python for that cost a round a few ms of CPU).
_DML = {"synchronize_session": False}

# What run_round returns besides a round's own status ("priced", "failed"): the round was not
# queued (run already, given up, or its feed deleted), or it was given up while it ran.
SKIPPED = "skipped"
GIVEN_UP = "given_up"


@dataclass(frozen=True)
class Claimed:
    """A round this worker claimed, with what it needs of its feed."""

    round_id: int
    feed_id: int
    pair: str
    sources: list[dict[str, Any]]
    aggregation: str
    min_sources: int
    scheduled_at: dt.datetime
    user_id: int


@dataclass(frozen=True)
class Unpaid:
    """A round its feed's owner could not pay for: failed, its feed paused, nothing asked."""

    round_id: int
    feed_id: int
    reason: str


def claim(
    session: Session, settings: Settings, round_id: int, now: dt.datetime
) -> Claimed | Unpaid | None:
    """Mark a queued round running, as started at ``now``, charge it to its feed's owner and
    read its feed; commits. None when it is not queued (another delivery of its message
    claimed it, the clock gave up on it, or its feed was deleted).

    An owner who cannot pay (``billing.round_cost``, from the default account) gets
    ``Unpaid``: the round is failed and its feed, if still active, paused for want of funds,
    in the same transaction.
    """
    row = session.execute(
        update(PriceRound)
        .where(
            PriceRound.id == round_id,
            PriceRound.status == "queued",
            PriceFeed.id == PriceRound.feed_id,
        )
        .values(status="running", started_at=now)
        .returning(
            PriceRound.feed_id,
            PriceRound.scheduled_at,
            PriceFeed.asset_pair,
            PriceFeed.sources,
            PriceFeed.aggregation,
            PriceFeed.min_sources,
            PriceFeed.user_id,
        ),
        execution_options=_DML,
    ).one_or_none()
    if row is None:
        session.commit()
        return None
    claimed = Claimed(
        round_id,
        row.feed_id,
        row.asset_pair,
        list(row.sources),
        row.aggregation,
        row.min_sources,
        row.scheduled_at,
        row.user_id,
    )
    cost = billing.round_cost(settings, len(claimed.sources))
    if cost > 0:
        paid = ledger.charge(
            session,
            claimed.user_id,
            billing.CHARGE_TYPE,
            cost,
            billing.charge_reference(round_id),
        )
        if not paid.ok:
            reason = billing.unpaid_reason(settings, len(claimed.sources))
            session.execute(
                update(PriceRound)
                .where(PriceRound.id == round_id)
                .values(status="failed", reason=reason, finished_at=now),
                execution_options=_DML,
            )
            # A feed its owner paused meanwhile stays paused by its owner.
            session.execute(
                update(PriceFeed)
                .where(PriceFeed.id == claimed.feed_id, PriceFeed.status == "active")
                .values(status="paused", paused_reason=billing.UNPAID),
                execution_options=_DML,
            )
            session.commit()
            return Unpaid(round_id, claimed.feed_id, reason)
    session.commit()
    return claimed


@dataclass(frozen=True)
class Answer:
    source: str
    price: Decimal | None
    latency_ms: int | None
    error: str | None = None
    kind: str | None = None
    # The market a named source read (``BASE/USDT`` where a USD feed accepts USDT).
    market: str | None = None


@dataclass(frozen=True)
class Askers:
    """What a round asks its sources with: the named sources' client, the fetcher behind the
    SSRF guard that generic sources (URLs a tenant chose) go through, and the threads that
    ask them at once."""

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
        market = None
        try:
            if definitions.is_generic(spec):
                quote = generic.ask(askers.fetcher, spec, pair, secrets or {})
            else:
                # Feeds defined before market lists keep no market: the catalog's rule.
                market = spec.get("market") or "/".join(REGISTRY[name].market(pair))
                quote = fetch(
                    askers.client,
                    REGISTRY[name],
                    market,
                    settings.price_source_url(name),
                    settings.price_source_timeout_seconds,
                    spec.get("symbol"),
                )
        except SourceError as exc:
            return Answer(name, None, None, exc.message, exc.kind, market)
        return Answer(name, quote.price, quote.latency_ms, market=market)

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
    """The price (or why there is none) and every source's record.

    Raises:
        aggregate.AggregationError: the kept prices cannot be aggregated as the feed says.
    """
    values = {a.source: a.price for a in answers if a.price is not None}
    records: dict[str, dict[str, Any]] = {
        a.source: {
            "source": a.source,
            "price": str(a.price) if a.price is not None else None,
            "latency_ms": a.latency_ms,
            "error": a.error,
            "error_kind": a.kind,
            "used": False,
            **({"market": a.market} if a.market is not None else {}),
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
            **_signed_report(settings, claimed, price, now, used),
        ),
        execution_options=_DML,
    )
    session.commit()
    return ("priced" if price is not None else "failed"), (
        publication.publication if publication else None
    )


def _signed_report(
    settings: Settings, claimed: Claimed, price: Decimal | None, at: dt.datetime, used: int
) -> dict[str, Any]:
    """The round's report and signature columns: empty without a price or a report key."""
    key = reports.report_key(settings)
    if price is None or key is None:
        return {}
    report = reports.Report.of(
        claimed.feed_id, claimed.pair, price, claimed.round_id, publishing.millis(at), used
    ).to_bytes()
    return {
        "report": report,
        "report_signature": key.sign(report),
        "report_key_id": key.id,
        "report_public_key": key.public_key,
    }


def price_claimed(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    askers: Askers,
    claimed: Claimed,
) -> tuple[str, str | None] | None:
    """Ask a claimed round's sources, price it and store it: its status and publication
    decision (None: given up meanwhile, nothing stored)."""
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

    def store() -> tuple[str, str | None] | None:
        with sessions() as session:
            return finish(session, settings, dispatcher, claimed, price, reason, source_data)

    # A short database outage loses no round: what the sources answered is kept and written
    # once the database answers (a write whose commit did go through stores nothing again:
    # the round is no longer running).
    return ride_out(store, seconds=settings.db_outage_seconds, what=f"round {claimed.round_id}")


def run_round(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    askers: Askers,
    metrics: RoundMetrics,
    round_id: int,
) -> str:
    """Run the queued round ``round_id`` once, whatever number of times its message comes,
    paid for by its feed's owner before any source is asked (``claim``). Returns its status
    ("priced", "failed": also when the owner could not pay), ``SKIPPED`` when it was not
    queued, or ``GIVEN_UP`` when the clock gave up on it while it ran (nothing stored).
    ``metrics`` counts the rounds this process finished.

    A round that fails unexpectedly is recorded as failed ("internal error") at once, so
    that its feed's next slot need not wait for it to count as abandoned.

    Raises:
        Exception: whatever failed unexpectedly, once the round is recorded as failed.
        sqlalchemy.exc.DBAPIError: the claim failed (the round stays queued; the clock gives
            up on it after ``clock.ABANDONED_AFTER``).
    """
    started = time.perf_counter()
    with sessions() as session:
        claimed = claim(session, settings, round_id, dt.datetime.now(dt.UTC))
    if claimed is None:
        log.info("round %d is not queued: nothing to do", round_id)
        return SKIPPED
    if isinstance(claimed, Unpaid):
        with logs.context(feed_id=claimed.feed_id):
            log.info("round %d not run, feed paused: %s", round_id, claimed.reason)
        metrics.finished("failed", None, time.perf_counter() - started)
        return "failed"
    with logs.context(feed_id=claimed.feed_id):
        try:
            outcome = price_claimed(sessions, settings, dispatcher, askers, claimed)
        except Exception:
            log.exception("price round %d of feed %d failed", round_id, claimed.feed_id)
            fail(sessions, round_id)
            metrics.finished("failed", None, time.perf_counter() - started)
            raise
    if outcome is None:
        return GIVEN_UP
    status, publication = outcome
    metrics.finished(status, publication, time.perf_counter() - started)
    return status


def fail(sessions: sessionmaker[Session], round_id: int) -> None:
    """Record a running round as failed by an internal error (a database error doing so is
    logged: the clock gives up on the round later)."""
    try:
        with sessions() as session:
            session.execute(
                update(PriceRound)
                .where(PriceRound.id == round_id, PriceRound.status == "running")
                .values(
                    status="failed",
                    reason="internal error",
                    finished_at=dt.datetime.now(dt.UTC),
                )
            )
            session.commit()
    except DBAPIError:
        log.exception("could not mark round %d failed", round_id)
