"""When a priced round is due to publish, and how its price is written on chain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from neosl.models import PriceFeed, PriceRound
from neosl_pricefeed.publishing import _due, feed_key, fixed_point, millis

AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def feed(deviation: str = "0.5", heartbeat: int = 3600) -> PriceFeed:
    return PriceFeed(id=7, deviation=Decimal(deviation), heartbeat=heartbeat, frequency=10)


def published(price: str, seconds_ago: float) -> PriceRound:
    return PriceRound(
        id=41, price=Decimal(price), finished_at=AT - dt.timedelta(seconds=seconds_ago)
    )


def test_a_feed_never_published_is_due() -> None:
    assert _due(feed(), Decimal("1"), AT, None) == "the feed's first publication"


@pytest.mark.parametrize(
    ("price", "due"),
    [
        ("100.5", True),  # exactly the deviation, up
        ("99.5", True),  # exactly the deviation, down
        ("100.49999999", False),
        ("99.50000001", False),
        ("100", False),
        ("250", True),
    ],
)
def test_the_deviation_is_measured_from_the_last_published_price(price: str, due: bool) -> None:
    why = _due(feed("0.5"), Decimal(price), AT, published("100", 60))
    assert (why is not None) == due
    if due:
        assert why is not None
        assert why.startswith("moved ")
        assert "round 41's 100" in why


@pytest.mark.parametrize(("age", "due"), [(3599.9, False), (3600, True), (86_400, True)])
def test_the_heartbeat_publishes_an_unchanged_price(age: float, due: bool) -> None:
    why = _due(feed(heartbeat=3600), Decimal("100"), AT, published("100", age))
    assert (why is not None) == due
    if due:
        assert why is not None
        assert why.startswith("heartbeat: round 41")


def test_prices_are_written_in_fixed_point_with_8_decimals() -> None:
    assert fixed_point(Decimal("12.34")) == 1_234_000_000
    assert fixed_point(Decimal("0.00000001")) == 1
    # Beyond what a JavaScript number holds exactly: still exact.
    assert fixed_point(Decimal("999999999999.99999999")) == 99_999_999_999_999_999_999
    assert millis(AT) == 1_795_780_800_000
    assert feed_key(7) == "feed:7"
