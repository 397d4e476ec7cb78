"""Publishing priced rounds on chain: whether a round is due, and the action that sends it.

A priced round is published when the feed was never published, when its price moved by at
least ``deviation`` percent from the last published price, or when ``heartbeat`` seconds
passed since the last published round. "Published" means its transaction HALTed on chain;
a publication that failed (FAULT, never included, or not paid for) does not count, so the
next round is due again as long as the price stays off.

A due round becomes an on-chain action (``neosl.onchain.actions.queue``) that the gas-ledger relays
like any other: built and test-invoked, its fees held from the feed owner's balance (charge
type ``pricefeed``: chain fees plus ``NSL_PRICEFEED_SERVICE_FEE``), signed once, sent and
settled from the chain. It calls

- the service's PriceFeed contract (``NSL_PRICEFEED_CONTRACT``):
  ``update("feed:<id>", price, timestamp, round)``, witnessed by the hot wallet, which is
  the contract's publisher; or
- the feed's ``target`` ``{contract, method}`` with the same four arguments, witnessed by
  the owner's signer account (``GET /v1/neo/signer``), as the owner's own actions are.

``price`` is fixed point with 8 decimals (an integer; the stored price is exact to 8
decimals), ``timestamp`` the round's price time in milliseconds since the epoch, ``round``
the round's id (increasing per feed). One publication of a feed is in flight at a time: a
due round while the previous one is still queued or pending is ``skipped``, since a later
round landing first would make the earlier one FAULT on the contract's stale-round check
and cost its fees for nothing. A round the owner cannot pay for is ``unpaid``; the relay
has the final word (an action it cannot hold the fees for fails with "insufficient
funds"). Either way the round itself is kept, priced, and the reason shows on the feed.

Who commits: the caller (``pricing.finish``, with the round).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.models import NeoAction, PriceFeed, PriceRound
from neosl.onchain import actions

SCALE = 10**8
# Without a publication to go by, the least a publication must find in the balance.
_SMALLEST_COST = Decimal("0.00000001")


def feed_key(feed_id: int) -> str:
    """The feed's key in the PriceFeed contract: ids are unique across tenants."""
    return f"feed:{feed_id}"


def fixed_point(price: Decimal) -> int:
    """``price`` as an integer with 8 decimals (exact: prices are stored to 8 decimals)."""
    return int((price * SCALE).to_integral_value())


def millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class Decision:
    publication: str  # "not_due", "queued", "skipped" or "unpaid"
    reason: str
    action_id: int | None = None


def _last(session: Session, feed_id: int) -> tuple[NeoAction, PriceRound] | None:
    """The feed's latest publication that did not fail, with its round."""
    row = session.execute(
        select(NeoAction, PriceRound)
        .join(PriceRound, PriceRound.id == NeoAction.price_round_id)
        .where(PriceRound.feed_id == feed_id, NeoAction.status != "failed")
        .order_by(NeoAction.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def _due(feed: PriceFeed, price: Decimal, at: dt.datetime, last: PriceRound | None) -> str | None:
    """Why the round is due, or None."""
    if last is None or last.price is None or last.finished_at is None:
        return "the feed's first publication"
    moved = abs(price - last.price) / last.price * 100
    if moved >= feed.deviation:
        return (
            f"moved {moved:.4f}% from round {last.id}'s {last.price}, deviation {feed.deviation}%"
        )
    age = (at - last.finished_at).total_seconds()
    if age >= feed.heartbeat:
        return f"heartbeat: round {last.id} was published {age:.0f} s ago ({feed.heartbeat} s)"
    return None


def decide(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    feed: PriceFeed,
    round_id: int,
    price: Decimal,
    at: dt.datetime,
) -> Decision:
    """Whether the priced round ``round_id`` (price ``price`` at ``at``) is published, and
    its queued action if so (relayed once the caller commits)."""
    last = _last(session, feed.id)
    if last is not None and last[0].status in ("queued", "pending"):
        return Decision("skipped", f"round {last[1].id}'s publication is still in flight")
    why = _due(feed, price, at, last[1] if last is not None else None)
    if why is None:
        return Decision(
            "not_due", f"within {feed.deviation}% of the last publication, heartbeat not reached"
        )
    if feed.target is None and settings.pricefeed_contract is None:
        return Decision("skipped", "no PriceFeed contract is configured (NSL_PRICEFEED_CONTRACT)")
    cost = _SMALLEST_COST + settings.pricefeed_service_fee
    if last is not None and last[0].fee_charged:
        cost = max(cost, last[0].fee_charged)
    if not ledger.can_pay(session, feed.user_id, cost):
        return Decision(
            "unpaid",
            f"insufficient funds: a publication costs about {cost} GAS "
            "(chain fees and the service fee); the round is kept, not published",
        )
    # A price in fixed point may pass 2**53: always the tagged form.
    price_arg = {"$neo": "Integer", "value": str(fixed_point(price))}
    args = [feed_key(feed.id), price_arg, millis(at), round_id]
    target = feed.target or {"contract": settings.pricefeed_contract, "method": "update"}
    call = actions.check(target["contract"], target["method"], args)
    action = actions.queue(
        session,
        dispatcher,
        feed.user_id,
        call,
        price_round_id=round_id,
        as_publisher=feed.target is None,
    )
    return Decision("queued", why, action.id)
