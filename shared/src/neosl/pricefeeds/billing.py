"""What a price round costs its feed's owner, and the balance a feed needs to run.

A round is paid for before any source is asked: the pricefeed worker charges it when it
claims the round (``neosl_pricefeed.pricing.claim``), type ``pricefeed``, reference
``round:<id>`` (the ledger charges a reference once, so a redelivered round never pays
twice). It costs ``NSL_PRICEFEED_ROUND_FEE`` plus ``NSL_PRICEFEED_SOURCE_FEE`` per source it
asks. A round whose owner cannot pay asks nothing: it fails, and its feed is paused for want
of funds until the owner's default account covers a round again (the pricefeed clock
resumes it). Public feeds are paid by their owner, the operator, like any other.

Publications are charged apart, by the relay (``NSL_PRICEFEED_SERVICE_FEE`` plus the chain's
fees).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, func, literal
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.errors import PaymentRequired
from neosl.gas import ledger
from neosl.gas.money import format_amount
from neosl.models import PriceFeed
from neosl.models.pricefeeds import PAUSED_UNFUNDED

CHARGE_TYPE = "pricefeed"
# How an unpaid round's reason starts; also why its feed is paused (``paused_reason``).
UNPAID = PAUSED_UNFUNDED


def round_cost(settings: Settings, sources: int) -> Decimal:
    """What one round asking ``sources`` sources costs, GAS (0: rounds are free)."""
    return settings.pricefeed_round_fee + settings.pricefeed_source_fee * sources


def round_cost_sql(settings: Settings) -> Any:
    """``round_cost`` of each feed's own sources, as a SQL expression on ``price_feeds``."""
    fee = Numeric(20, 8)
    return literal(settings.pricefeed_round_fee, fee) + literal(
        settings.pricefeed_source_fee, fee
    ) * func.jsonb_array_length(PriceFeed.sources)


def charge_reference(round_id: int) -> str:
    return f"round:{round_id}"


def describe_cost(settings: Settings, sources: int) -> str:
    """``round_cost`` with how it is made up, for messages."""
    return (
        f"{format_amount(round_cost(settings, sources))} GAS "
        f"({format_amount(settings.pricefeed_round_fee)} per round and "
        f"{format_amount(settings.pricefeed_source_fee)} for each of its {sources} sources)"
    )


def can_pay_round(session: Session, settings: Settings, user_id: int, sources: int) -> bool:
    """Whether the tenant's default account covers one round of ``sources`` sources now
    (always, when rounds are free). Advisory: the round's charge is what guarantees."""
    cost = round_cost(settings, sources)
    return cost <= 0 or ledger.can_pay(session, user_id, cost)


def require_round_funds(
    session: Session, settings: Settings, user_id: int, sources: int, doing: str
) -> None:
    """Refuse ``doing`` (e.g. "resume this feed") unless the tenant's default account covers
    one round of ``sources`` sources.

    Raises:
        PaymentRequired: it does not (or there is no default account).
    """
    if not can_pay_round(session, settings, user_id, sources):
        raise payment_required(settings, sources, doing)


def payment_required(settings: Settings, sources: int, doing: str) -> PaymentRequired:
    """The refusal of ``doing`` to a tenant who cannot pay a round of ``sources`` sources."""
    cost = describe_cost(settings, sources)
    return PaymentRequired(
        f"your default gas account cannot pay for a round of this feed, so you cannot "
        f"{doing}: each round costs {cost}, charged before its sources are asked; "
        "deposit GAS first",
        {"balance": [f"Insufficient for one round of {cost}."]},
    )


def unpaid_reason(settings: Settings, sources: int) -> str:
    """A round's reason (and log line) when its owner could not pay for it."""
    return (
        f"{UNPAID}: the round costs {describe_cost(settings, sources)} and the owner's "
        "default gas account cannot pay it; no source was asked, and the feed is paused "
        "until that account covers a round"
    )
