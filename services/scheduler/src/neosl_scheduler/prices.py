"""Price triggers: fire once when a condition has held for its duration, then re-arm.

A trigger's ``state`` holds the last ``price_data`` row it evaluated (``last_id``), the
latest price and its time, since when the condition holds (``since``, the time of the first
price of the current run that met it) and whether it is ``armed``. Evaluating reads the
feed's rows after ``last_id`` in order:

- a price that meets the condition starts the run if none is going (``since``);
- a price that does not ends the run and re-arms the trigger;
- a feed silent for longer than ``stale_after`` (three times its frequency, at least a
  minute) breaks the run too: a condition is not taken to hold on prices nobody sees.

An armed trigger whose run has lasted ``duration`` seconds fires (cause ``price:<since>``:
once per run) and is disarmed until the condition stops holding. Evaluation runs when the
pricefeed worker stores a round (``EVALUATE_PRICE_TRIGGERS``) and on the clock's periodic
check, so a run that reaches its duration between two prices still fires on time.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import PriceData, PriceFeed, Trigger
from neosl.triggers import firing, rules

_ROWS_PER_PASS = 1000


def stale_after(frequency: int) -> float:
    return max(3.0 * frequency, 60.0)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def evaluate(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    now: dt.datetime,
    feed_id: int | None = None,
) -> int:
    """Evaluate the active price triggers (of ``feed_id``, or all); the caller commits.
    Returns how many fired. Triggers another evaluation holds are left to it."""
    stmt = select(Trigger).where(
        Trigger.trigger_type == "price", Trigger.status == "active", Trigger.feed_id.is_not(None)
    )
    if feed_id is not None:
        stmt = stmt.where(Trigger.feed_id == feed_id)
    found = list(session.scalars(stmt.order_by(Trigger.id).with_for_update(skip_locked=True)))
    if not found:
        return 0
    feeds = {
        f.id: f
        for f in session.scalars(
            select(PriceFeed).where(PriceFeed.id.in_({t.feed_id for t in found}))
        )
    }
    causes = []
    for trigger in found:
        feed = feeds.get(trigger.feed_id or 0)
        if feed is None:
            continue
        cause = _step(session, trigger, feed, now)
        if cause is not None:
            causes.append(cause)
    firing.fire(session, settings, dispatcher, causes)
    return len(causes)


def _step(
    session: Session, trigger: Trigger, feed: PriceFeed, now: dt.datetime
) -> firing.Cause | None:
    config = trigger.trigger_config
    state: dict[str, Any] = dict(trigger.state or {})
    armed = bool(state.get("armed", True))
    since = dt.datetime.fromisoformat(state["since"]) if state.get("since") else None
    price_at = dt.datetime.fromisoformat(state["price_at"]) if state.get("price_at") else None
    price = Decimal(state["price"]) if state.get("price") is not None else None
    rows = session.execute(
        select(PriceData.id, PriceData.price, PriceData.timestamp)
        .where(PriceData.feed_id == feed.id, PriceData.id > int(state.get("last_id") or 0))
        .order_by(PriceData.id)
        .limit(_ROWS_PER_PASS)
    ).all()
    limit = dt.timedelta(seconds=stale_after(feed.frequency))
    for row_id, row_price, stamp in rows:
        if price_at is not None and stamp - price_at > limit:
            since = None  # a gap in the feed breaks the run
        if rules.holds(config, row_price):
            since = since or stamp
        else:
            since = None
            armed = True
        price, price_at = row_price, stamp
        state["last_id"] = row_id
    if price_at is None or now - price_at > limit:
        since = None
    cause = None
    if (
        armed
        and since is not None
        and price is not None
        and price_at is not None
        and now - since >= dt.timedelta(seconds=config["duration"])
    ):
        detail = {
            "type": "price",
            "trigger_id": trigger.id,
            "feed_id": feed.id,
            "pair": config["asset_pair"],
            "price": str(price),
            "price_at": _iso(price_at),
            "threshold": config["threshold"],
            "condition": config["condition"],
            "duration": config["duration"],
            "since": _iso(since),
        }
        cause = firing.Cause(trigger.id, f"price:{_iso(since)}", detail)
        armed = False
    state.update(
        armed=armed,
        since=_iso(since) if since else None,
        price=str(price) if price is not None else None,
        price_at=_iso(price_at) if price_at else None,
    )
    if state != trigger.state:
        trigger.state = state
    return cause
