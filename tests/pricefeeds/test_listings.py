"""Feeds for any pair a source lists: the stored market lists decide which sources price a
pair, with which market and symbol; USD is read from USDT only where the feed's owner
accepts it; a source without a stored list serves its built-in catalog."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import PriceFeed, SourceListing
from neosl.pricefeeds import catalog, definitions
from neosl_devstack.markets import RATE_LIMITED, FakeMarkets
from neosl_pricefeed import listings
from neosl_pricefeed.sources.base import Market, new_client
from tests.api.test_basics import assert_error
from tests.factories import make_user
from tests.gas.test_api import tenant
from tests.platform.test_jobs_after_commit import waiting
from tests.pricefeeds.test_rounds import one_round
from tests.scraping import api_figures

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)

# What three exchanges list, as their lists would give it (our asset codes, their symbols).
LISTS: dict[str, list[Market]] = {
    "coinbase": [Market("FLM", "USD", "FLM-USD"), Market("BTC", "USD", "BTC-USD")],
    "kraken": [Market("FLM", "USD", "FLMUSD"), Market("BTC", "USD", "XBTUSD")],
    "binance": [
        Market("FLM", "USDT", "FLMUSDT"),
        Market("FLM", "BTC", "FLMBTC"),
        Market("NEO", "USDT", "NEOUSDT"),
    ],
    # An exchange that lists nothing of FLM.
    "okx": [Market("BTC", "USDT", "BTC-USDT")],
}


def store_lists(db: Session, lists: dict[str, list[Market]] = LISTS) -> None:
    for name, markets in lists.items():
        db.execute(insert(SourceListing).values(source=name, checked_at=NOW))
        listings.store(db, name, markets, NOW)


def feed(**fields: Any) -> dict[str, Any]:
    return {"asset_pair": "FLM/USD", "frequency": 60, **fields}


def test_a_pair_outside_the_catalog_is_served_by_the_sources_that_list_it(
    db: Session, client: FlaskClient
) -> None:
    store_lists(db)
    h = tenant(client)
    body = feed(sources=["coinbase", "kraken"], min_sources=2)
    resp = client.post("/v1/price-feeds", json=body, headers=h)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["sources"] == [
        {"name": "coinbase", "market": "FLM/USD", "symbol": "FLM-USD"},
        {"name": "kraken", "market": "FLM/USD", "symbol": "FLMUSD"},
    ]
    assert resp.get_json()["usdt_as_usd"] is False


def test_usd_from_usdt_only_where_the_owner_accepts_it(db: Session, client: FlaskClient) -> None:
    store_lists(db)
    h = tenant(client)
    refused = client.post("/v1/price-feeds", json=feed(sources=["coinbase", "binance"]), headers=h)
    body = assert_error(refused, 422, "validation_error")
    assert body["details"] == {
        "sources[1]": [
            "binance lists FLM/USDT, not FLM/USD: set usdt_as_usd to accept USDT as USD "
            "for this feed"
        ]
    }
    accepted = client.post(
        "/v1/price-feeds",
        json=feed(sources=["coinbase", "binance"], usdt_as_usd=True),
        headers=h,
    )
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["sources"][1] == {
        "name": "binance",
        "market": "FLM/USDT",
        "symbol": "FLMUSDT",
    }
    # A source's own USD market is read even when USDT is accepted.
    assert accepted.get_json()["sources"][0]["market"] == "FLM/USD"


def test_a_source_that_does_not_list_the_pair_is_named(db: Session, client: FlaskClient) -> None:
    store_lists(db)
    h = tenant(client)
    refused = client.post(
        "/v1/price-feeds",
        json=feed(sources=["coinbase", "okx"], usdt_as_usd=True),
        headers=h,
    )
    body = assert_error(refused, 422, "validation_error")
    assert body["details"] == {
        "sources[1]": ["okx does not list FLM/USD (GET /v1/price-sources?pair=FLM/USD)"]
    }
    # Another quote the exchange lists is a pair of its own.
    btc = client.post("/v1/price-feeds", json=feed(asset_pair="FLM/BTC", sources=["binance"]))
    assert btc.status_code == 401  # (no key)
    btc = client.post(
        "/v1/price-feeds", json=feed(asset_pair="flm/btc", sources=["binance"]), headers=h
    )
    assert btc.status_code == 201, btc.get_json()
    assert btc.get_json()["sources"] == [
        {"name": "binance", "market": "FLM/BTC", "symbol": "FLMBTC"}
    ]


def test_without_a_stored_list_the_catalog_applies(db: Session, client: FlaskClient) -> None:
    store_lists(db, {"coinbase": LISTS["coinbase"]})
    h = tenant(client)
    # Kraken has no stored list here: FLM is not among its built-in bases.
    refused = client.post("/v1/price-feeds", json=feed(sources=["kraken"]), headers=h)
    (message,) = assert_error(refused, 422, "validation_error")["details"]["sources[0]"]
    assert message.startswith("kraken does not serve FLM/USD (its market list is not fetched")
    # Its catalog still serves BTC/USD, with the symbol left to the adapter.
    btc = client.post(
        "/v1/price-feeds", json=feed(asset_pair="BTC/USD", sources=["kraken"]), headers=h
    )
    assert btc.status_code == 201, btc.get_json()
    assert btc.get_json()["sources"] == [{"name": "kraken", "market": "BTC/USD"}]
    # The catalog's USDT exchanges also need the owner's acceptance for USD.
    gate = client.post(
        "/v1/price-feeds", json=feed(asset_pair="NEO/USD", sources=["gate"]), headers=h
    )
    assert assert_error(gate, 422, "validation_error")["details"]["sources[0]"] == [
        "gate lists NEO/USDT, not NEO/USD: set usdt_as_usd to accept USDT as USD for this feed"
    ]


def test_price_sources_answers_which_sources_price_a_pair(db: Session, client: FlaskClient) -> None:
    store_lists(db)
    h = tenant(client)
    listed = client.get("/v1/price-sources?pair=flm/usd", headers=h).get_json()
    assert [(s["name"], s["market"], s["symbol"]) for s in listed] == [
        ("binance", "FLM/USDT", "FLMUSDT"),
        ("coinbase", "FLM/USD", "FLM-USD"),
        ("kraken", "FLM/USD", "FLMUSD"),
    ]
    strict = client.get("/v1/price-sources?pair=FLM/USD&usdt_as_usd=false", headers=h)
    assert [s["name"] for s in strict.get_json()] == ["coinbase", "kraken"]
    # Without a pair: every source, with its list's status.
    every = {s["name"]: s for s in client.get("/v1/price-sources", headers=h).get_json()}
    assert list(every) == list(catalog.NAMES)
    assert every["binance"]["markets"] == 3
    assert every["binance"]["listed_at"] == "2026-12-07T12:00:00+00:00"
    assert every["htx"]["markets"] is None
    assert every["htx"]["listed_at"] is None
    assert every["binance"]["market"] is None
    assert_error(client.get("/v1/price-sources?pair=FLM", headers=h), 422, "validation_error")


def test_an_update_decides_the_markets_again(db: Session, client: FlaskClient) -> None:
    store_lists(db)
    h = tenant(client)
    made = client.post(
        "/v1/price-feeds", json=feed(sources=["coinbase", "binance"], usdt_as_usd=True), headers=h
    ).get_json()
    # The stored sources sent back as they are shown: accepted, their markets decided anew.
    same = client.patch(
        f"/v1/price-feeds/{made['id']}", json={"sources": made["sources"]}, headers=h
    )
    assert same.status_code == 200, same.get_json()
    assert same.get_json()["sources"] == made["sources"]
    # Withdrawing the acceptance refuses the USDT source.
    refused = client.patch(f"/v1/price-feeds/{made['id']}", json={"usdt_as_usd": False}, headers=h)
    assert assert_error(refused, 422, "validation_error")["details"].keys() == {"sources[1]"}
    # A symbol a tenant makes up is not taken.
    forged = [{**made["sources"][0], "symbol": "SOMETHING-ELSE"}]
    patched = client.patch(f"/v1/price-feeds/{made['id']}", json={"sources": forged}, headers=h)
    assert patched.get_json()["sources"] == [made["sources"][0]]


def test_a_stored_list_replaces_the_previous_one_whole(db: Session) -> None:
    store_lists(db, {"binance": LISTS["binance"]})
    listings.store(db, "binance", [Market("NEO", "USDT", "NEOUSDT")], NOW)
    routes = catalog.routes(db, "FLM/USD", ["binance"], usdt_as_usd=True)
    assert routes["binance"] == "binance does not list FLM/USD (GET /v1/price-sources?pair=FLM/USD)"
    # Repeated markets in a list: the first one's symbol is kept.
    listings.store(
        db, "binance", [Market("NEO", "USDT", "NEOUSDT"), Market("NEO", "USDT", "OTHER")], NOW
    )
    assert catalog.listings(db)["binance"].markets == 1
    route = catalog.routes(db, "NEO/USDT", ["binance"], usdt_as_usd=False)["binance"]
    assert route == catalog.Route("binance", "NEO/USDT", "NEOUSDT")


@pytest.mark.parametrize("pair", ["USDT/USD", "FLM/FLM"])
def test_odd_pairs_are_not_routed(db: Session, pair: str) -> None:
    store_lists(db, {"binance": [*LISTS["binance"], Market("USDT", "USDT", "X")]})
    route = catalog.routes(db, pair, ["binance"], usdt_as_usd=True)["binance"]
    assert isinstance(route, str)


# -- The worker's refresh, against the local markets server ------------------------------------


def test_a_refresh_stores_what_the_exchange_lists_and_keeps_it_through_a_failure(
    db: Session, pointed: Settings, markets: FakeMarkets
) -> None:
    markets.list_market("kraken", "FLM", "USD", price="0.05")
    markets.list_market("kraken", "BTC", "USD", price="68000")
    markets.list_market("kraken", "ETH", "USD", trading=False)
    with new_client() as http:
        assert listings.refresh(db, pointed, http, "kraken") == "2 markets"
        stored = catalog.listings(db)["kraken"]
        assert (stored.markets, stored.error) == (2, None)
        assert catalog.routes(db, "BTC/USD", ["kraken"], False)["kraken"] == catalog.Route(
            "kraken", "BTC/USD", "XBTUSD"
        )
        # Closed markets are not listed.
        assert isinstance(catalog.routes(db, "ETH/USD", ["kraken"], False)["kraken"], str)

        markets.fail("kraken", RATE_LIMITED)
        outcome = listings.refresh(db, pointed, http, "kraken")
    assert outcome == "failed: Kraken is rate limiting us (EAPI:Rate limit exceeded)"
    failed = catalog.listings(db)["kraken"]
    # The stored list stays; the error shows; the next try comes within RETRY_SECONDS.
    assert (failed.markets, failed.listed_at) == (2, stored.listed_at)
    assert failed.error == "Kraken is rate limiting us (EAPI:Rate limit exceeded)"
    retry_in = failed.checked_at + dt.timedelta(seconds=pointed.price_listing_refresh_seconds)
    assert retry_in - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=listings.RETRY_SECONDS)
    assert catalog.routes(db, "FLM/USD", ["kraken"], False)["kraken"] == catalog.Route(
        "kraken", "FLM/USD", "FLMUSD"
    )


def test_a_list_too_long_to_be_an_exchanges_is_refused_whole(
    db: Session, pointed: Settings, markets: FakeMarkets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listings, "MAX_MARKETS", 2)
    for base in ("FLM", "NEO"):
        markets.list_market("gate", base, "USDT", price="1")
    with new_client() as http:
        assert listings.refresh(db, pointed, http, "gate") == "2 markets"
        markets.list_market("gate", "GAS", "USDT", price="1")
        outcome = listings.refresh(db, pointed, http, "gate")
    assert outcome == "failed: Gate lists 3 markets, more than 2 are kept"
    kept = catalog.listings(db)["gate"]
    assert (kept.markets, kept.error) == (2, "Gate lists 3 markets, more than 2 are kept")


def test_each_list_is_due_once_a_period_whatever_the_number_of_clocks(
    db: Session, settings: Settings
) -> None:
    start = dt.datetime.now(dt.UTC)
    # Never asked: due at once.
    assert listings.due(db, settings, start) == sorted(catalog.NAMES)
    # A second clock looking at the same moment, or a little later, finds nothing due.
    assert listings.due(db, settings, start) == []
    period = dt.timedelta(seconds=settings.price_listing_refresh_seconds)
    assert listings.due(db, settings, start + period - dt.timedelta(seconds=1)) == []
    assert listings.due(db, settings, start + period) == sorted(catalog.NAMES)


def test_a_feed_outside_the_four_bases_is_priced_over_several_exchanges(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
) -> None:
    quotes = {
        "coinbase": ("USD", "0.05010"),
        "kraken": ("USD", "0.05000"),
        "binance": ("USDT", "0.04990"),
        "okx": ("USDT", "0.05020"),
    }
    for name, (quote, price) in quotes.items():
        markets.list_market(name, "FLM", quote, price=price)
    with new_client() as http, sessions() as db:
        for name in quotes:
            assert listings.refresh(db, pointed, http, name) == "1 markets"
        user = make_user(db)
        fields = definitions.validated(
            db,
            pointed,
            {
                "asset_pair": "FLM/USD",
                "frequency": 60,
                "sources": list(quotes),
                "aggregation": "median",
                "deviation": None,
                "heartbeat": None,
                "min_sources": 4,
                "target": None,
                "usdt_as_usd": True,
            },
        )
        db.add(PriceFeed(user_id=user.id, next_round_at=dt.datetime.now(dt.UTC), **fields))
        db.commit()
    done = one_round(sessions, pointed, producer)
    assert (done.status, done.sources_used) == ("priced", 4), done.reason
    assert done.price == Decimal("0.05005000")
    # Each source's record shows the market it read: USDT where the owner accepted it.
    read = {r["source"]: (r["market"], r["price"]) for r in done.source_data}
    assert read == {
        "coinbase": ("FLM/USD", "0.05010"),
        "kraken": ("FLM/USD", "0.05000"),
        "binance": ("FLM/USDT", "0.04990"),
        "okx": ("FLM/USDT", "0.05020"),
    }
    # The symbols asked are the listed ones.
    assert [a.query.get("symbol") for a in markets.asked("binance") if "symbol" in a.query] == [
        "FLMUSDT"
    ]
    assert [a.path for a in markets.asked("coinbase") if a.path.endswith("/ticker")] == [
        "/products/FLM-USD/ticker"
    ]


def test_the_clock_queues_due_lists_and_the_worker_stores_them(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    from neosl_pricefeed import clock

    markets.list_market("gate", "FLM", "USDT", price="0.05")
    ticking = clock.Clock(pointed, sessions, Dispatcher(producer))
    ticking.tick()  # every source never asked: one refresh each
    ticking.next_listings = 0.0
    ticking.tick()  # none due again
    queued = waiting(redis_client, jobs.PRICEFEED_QUEUE)
    assert {name for name, _ in queued} == {jobs.REFRESH_LISTING.name}
    assert sorted(kw["source"] for _, kw in queued) == sorted(catalog.NAMES)
    with new_client() as http, sessions() as db:
        listings.refresh(db, pointed, http, "gate")
        assert catalog.serving(db, "FLM/USD", usdt_as_usd=True) == [
            catalog.Route("gate", "FLM/USDT", "FLM_USDT")
        ]


def test_each_sources_list_shows_in_the_metrics(db: Session, client: FlaskClient) -> None:
    store_lists(db, {"binance": LISTS["binance"]})
    db.execute(insert(SourceListing).values(source="gate", checked_at=NOW, error="Gate is down"))
    db.flush()
    text = api_figures(client.application)
    assert 'neosl_price_source_markets{source="binance"} 3.0' in text
    assert 'neosl_price_source_markets{source="gate"} 0.0' in text
    assert 'neosl_price_source_listing_failing{source="gate"} 1.0' in text
    assert 'neosl_price_source_listing_failing{source="binance"} 0.0' in text
    # An age only for a stored list (NOW is a fixed moment in the past of this test).
    (age,) = [
        line
        for line in text.splitlines()
        if line.startswith("neosl_price_source_listing_age_seconds{")
    ]
    assert age.startswith('neosl_price_source_listing_age_seconds{source="binance"} ')
    assert float(age.split()[-1]) > 0
