"""Price feeds over HTTP: validation naming the field, public feeds, isolation, history
(prices, OHLC computed in SQL, rounds, latest) and the sources' catalog."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import PRICE_SOURCE_URLS
from neosl.models import NeoAction, PriceData, PriceFeed, PriceRound
from neosl.pricefeeds import catalog
from tests.api.test_basics import assert_error
from tests.clirun import run_cli
from tests.factories import make_user
from tests.gas.test_api import tenant
from tests.scraping import api_figures

FEED = {
    "asset_pair": "NEO/USD",
    "frequency": 60,
    "sources": ["binance", "okx", "kucoin"],
    "usdt_as_usd": True,
}


def create(client: FlaskClient, h: dict[str, str], **fields: Any) -> Any:
    return client.post("/v1/price-feeds", json={**FEED, **fields}, headers=h)


def created(client: FlaskClient, h: dict[str, str], **fields: Any) -> dict[str, Any]:
    resp = create(client, h, **fields)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_every_source_has_a_configurable_url_and_the_catalog_is_served(
    client: FlaskClient,
) -> None:
    assert set(catalog.NAMES) == set(PRICE_SOURCE_URLS)
    assert len(catalog.NAMES) >= 8
    h = tenant(client)
    listed = client.get("/v1/price-sources", headers=h).get_json()
    assert [s["name"] for s in listed] == list(catalog.NAMES)
    binance = next(s for s in listed if s["name"] == "binance")
    assert binance["quotes"]["USD"] == "USDT"  # no dollar market: its USDT one


def test_create_with_defaults(client: FlaskClient) -> None:
    h = tenant(client)
    feed = created(client, h, asset_pair="neo/usd")
    assert feed["asset_pair"] == "NEO/USD"
    # No market list is stored here: each source's catalog, USD read from USDT as accepted.
    assert feed["sources"] == [
        {"name": "binance", "market": "NEO/USDT"},
        {"name": "okx", "market": "NEO/USDT"},
        {"name": "kucoin", "market": "NEO/USDT"},
    ]
    assert (feed["aggregation"], feed["deviation"], feed["heartbeat"], feed["min_sources"]) == (
        "median",
        "0.50",  # as stored and read back: two decimals
        3600,
        1,
    )
    assert (feed["status"], feed["public"], feed["target"]) == ("active", False, None)
    assert dt.datetime.fromisoformat(feed["next_round_at"]) <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"asset_pair": "NEOUSD"}, "asset_pair"),
        ({"frequency": 1}, "frequency"),  # under NSL_PRICEFEED_MIN_FREQUENCY_SECONDS
        ({"sources": []}, "sources"),
        ({"sources": ["binance", "nowhere"]}, "sources[1]"),
        ({"sources": ["binance", "binance"]}, "sources[1]"),
        ({"sources": ["kraken"]}, "sources[0]"),  # kraken does not serve NEO/USD
        ({"aggregation": "mode"}, "aggregation"),
        ({"aggregation": "weighted"}, "sources[0].weight"),
        ({"sources": [{"name": "binance", "weight": 2}]}, "sources[0].weight"),
        (
            {"aggregation": "weighted", "sources": [{"name": "binance", "weight": 0}]},
            "sources[0].weight",
        ),
        ({"deviation": 0}, "deviation"),
        ({"deviation": "101"}, "deviation"),
        ({"heartbeat": 30}, "heartbeat"),  # below the frequency
        ({"min_sources": 4}, "min_sources"),
        ({"min_sources": 0}, "min_sources"),
        ({"target": {"contract": "0x12", "method": "update"}}, "target.contract"),
        ({"target": {"contract": "0x" + "a" * 40}}, "target"),
        ({"sources": [{"url": "ftp://prices.example/x", "json_path": "$.p"}]}, "sources[0].url"),
        (
            {"sources": [{"url": "https://prices.example/x", "json_path": "p["}]},
            "sources[0].json_path",
        ),
        (
            {
                "sources": [
                    {
                        "url": "https://prices.example/x",
                        "json_path": "$.p",
                        "headers": {"X-Key": "{{secrets.no-such-name}}"},
                    }
                ]
            },
            "sources[0].headers.X-Key",
        ),
    ],
)
def test_errors_name_the_field(client: FlaskClient, fields: dict[str, Any], field: str) -> None:
    h = tenant(client)
    error = assert_error(create(client, h, **fields), 422, "validation_error")
    assert field in error["details"], error


def test_weighted_sources_and_a_tenant_contract(client: FlaskClient) -> None:
    h = tenant(client)
    target = {"contract": "0x" + "AB" * 20, "method": "updatePrice"}
    feed = created(
        client,
        h,
        aggregation="weighted",
        sources=[{"name": "binance", "weight": 2}, {"name": "okx", "weight": "0.5"}],
        min_sources=2,
        heartbeat=600,
        target=target,
    )
    assert feed["sources"] == [
        {"name": "binance", "market": "NEO/USDT", "weight": "2"},
        {"name": "okx", "market": "NEO/USDT", "weight": "0.5"},
    ]
    assert feed["target"] == {"contract": "0x" + "ab" * 20, "method": "updatePrice"}
    # Back to the median: the weights go, the names stay.
    changed = client.patch(
        f"/v1/price-feeds/{feed['id']}", json={"aggregation": "median"}, headers=h
    ).get_json()
    assert changed["sources"] == [
        {"name": "binance", "market": "NEO/USDT"},
        {"name": "okx", "market": "NEO/USDT"},
    ]
    # A change is validated with the rest of the feed.
    bad = client.patch(f"/v1/price-feeds/{feed['id']}", json={"frequency": 601}, headers=h)
    assert "heartbeat" in assert_error(bad, 422, "validation_error")["details"]


def test_public_feeds_are_readable_by_all_and_changed_by_none(
    client: FlaskClient, db: Session
) -> None:
    operator = tenant(client, "operator")
    public_id = created(client, operator)["id"]
    db.get_one(PriceFeed, public_id).public = True
    db.flush()
    private_id = created(client, operator, asset_pair="GAS/USD", sources=["binance", "kucoin"])[
        "id"
    ]
    h = tenant(client)
    own_id = created(client, h)["id"]
    listed = client.get("/v1/price-feeds", headers=h).get_json()["items"]
    assert [f["id"] for f in listed] == [own_id, public_id]
    assert client.get(f"/v1/price-feeds/{public_id}", headers=h).get_json()["public"] is True
    assert client.get(f"/v1/price-feeds/{public_id}/latest", headers=h).status_code == 200
    for resp in (
        client.patch(f"/v1/price-feeds/{public_id}", json={"frequency": 120}, headers=h),
        client.delete(f"/v1/price-feeds/{public_id}", headers=h),
        client.post(f"/v1/price-feeds/{public_id}/pause", headers=h),
    ):
        assert_error(resp, 403, "forbidden")
    base = f"/v1/price-feeds/{private_id}"
    for resp in (
        client.get(base, headers=h),
        client.get(f"{base}/data", headers=h),
        client.get(f"{base}/rounds", headers=h),
        client.get(f"{base}/latest", headers=h),
        client.patch(base, json={"frequency": 120}, headers=h),
        client.delete(base, headers=h),
    ):
        assert_error(resp, 404, "not_found")
    by_pair = client.get("/v1/price-feeds?asset_pair=gas/usd", headers=operator).get_json()
    assert [f["id"] for f in by_pair["items"]] == [private_id]


def test_pause_resume_delete(client: FlaskClient) -> None:
    h = tenant(client)
    feed = created(client, h)
    paused = client.post(f"/v1/price-feeds/{feed['id']}/pause", headers=h).get_json()
    assert (paused["status"], paused["paused_reason"]) == ("paused", "owner")
    resumed = client.post(f"/v1/price-feeds/{feed['id']}/resume", headers=h).get_json()
    assert (resumed["status"], resumed["paused_reason"]) == ("active", None)
    assert client.delete(f"/v1/price-feeds/{feed['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/price-feeds/{feed['id']}", headers=h), 404, "not_found")


T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def prices(db: Session, feed_id: int, points: list[tuple[int, str]]) -> None:
    for seconds, price in points:
        db.add(
            PriceData(
                feed_id=feed_id,
                timestamp=T0 + dt.timedelta(seconds=seconds),
                price=Decimal(price),
                sources_used=3,
                source_data=[{"source": "binance", "price": price}],
            )
        )
    db.flush()


def test_history_ohlc_rounds_and_latest(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    feed_id = created(client, h)["id"]
    # Two 5-minute buckets: 12:00-12:05 and 12:05-12:10.
    prices(db, feed_id, [(0, "10.5"), (60, "12"), (120, "9.25"), (240, "11"), (300, "11.5")])
    since_minute = (T0 + dt.timedelta(seconds=60)).isoformat().replace("+", "%2B")
    page = client.get(
        f"/v1/price-feeds/{feed_id}/data?limit=2&from={since_minute}", headers=h
    ).get_json()
    assert [p["price"] for p in page["items"]] == ["11.50000000", "11.00000000"]
    rest = client.get(
        f"/v1/price-feeds/{feed_id}/data?cursor={page['next_cursor']}", headers=h
    ).get_json()
    assert [p["price"] for p in rest["items"]] == ["9.25000000", "12.00000000", "10.50000000"]
    until = (T0 + dt.timedelta(hours=1)).isoformat().replace("+", "%2B")
    since = T0.isoformat().replace("+", "%2B")
    buckets = client.get(
        f"/v1/price-feeds/{feed_id}/data?interval=5m&from={since}&to={until}", headers=h
    ).get_json()["items"]
    assert buckets == [
        {
            "start": (T0 + dt.timedelta(minutes=5)).isoformat(),
            "open": "11.50000000",
            "high": "11.50000000",
            "low": "11.50000000",
            "close": "11.50000000",
            "rounds": 1,
        },
        {
            "start": T0.isoformat(),
            "open": "10.50000000",
            "high": "12.00000000",
            "low": "9.25000000",
            "close": "11.00000000",
            "rounds": 4,
        },
    ]
    bad = client.get(f"/v1/price-feeds/{feed_id}/data?interval=2m", headers=h)
    assert_error(bad, 422, "validation_error")
    db.add(
        PriceRound(
            feed_id=feed_id,
            scheduled_at=T0,
            started_at=T0,
            finished_at=T0,
            status="failed",
            reason="1 of 3 sources answered; 2 needed",
            source_data=[{"source": "okx", "error": "rate_limited"}],
        )
    )
    db.flush()
    rounds = client.get(f"/v1/price-feeds/{feed_id}/rounds", headers=h).get_json()["items"]
    assert [(r["status"], r["reason"]) for r in rounds] == [
        ("failed", "1 of 3 sources answered; 2 needed")
    ]
    last = client.get(f"/v1/price-feeds/{feed_id}/latest", headers=h).get_json()
    assert last["price"]["price"] == "11.50000000"
    assert last["round"]["status"] == "failed"


@pytest.mark.slow
def test_the_operator_creates_public_feeds_from_the_cli(
    server_env: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions() as db:
        operator = make_user(db, "operator")
        db.commit()
        operator_id = operator.id
    made = run_cli(
        server_env,
        "feeds", "create", "--owner", "operator", "--pair", "NEO/USD", "--frequency", "60",
        "--sources", "binance,okx,kucoin", "--min-sources", "2", "--public", "--usdt-as-usd",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "created public price feed" in made.stdout
    with sessions() as db:
        feed = db.scalars(select(PriceFeed)).one()
        assert (feed.user_id, feed.public, feed.min_sources) == (operator_id, True, 2)
    refused = run_cli(
        server_env,
        "feeds", "create", "--owner", "operator", "--pair", "NEO/USD", "--frequency", "60",
        "--sources", "kraken", "--public",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "kraken does not serve NEO/USD" in refused.stderr
    nobody = run_cli(
        server_env,
        "feeds", "create", "--owner", "nobody", "--pair", "NEO/USD", "--frequency", "60",
        "--sources", "binance",
    )  # fmt: skip
    assert "no account named 'nobody'" in nobody.stderr
    listed = run_cli(server_env, "feeds", "list")
    assert f"{feed.id}\tNEO/USD\tpublic\tactive" in listed.stdout


def test_a_generic_source_and_the_publishing_of_a_feed(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    keyed = {
        "url": "https://prices.example/v1/neo",
        "json_path": "$.data[0].price",
        "headers": {"X-Api-Key": "{{secrets.PRICES_KEY}}"},
        "name": "mine",
    }
    unweighted = create(client, h, sources=[{"name": "binance", "weight": 1}, keyed])
    assert "sources[0].weight" in assert_error(unweighted, 422, "validation_error")["details"]
    feed = created(
        client,
        h,
        sources=[{"name": "binance", "weight": 1}, {**keyed, "weight": 3}],
        aggregation="weighted",
    )
    assert feed["sources"][1] == {
        "name": "http:mine",
        "url": keyed["url"],
        "json_path": "$.data[0].price",
        "headers": {"X-Api-Key": "{{secrets.PRICES_KEY}}"},
        "weight": "3",
    }
    # Back to the median: the weights go, the generic source stays as it was.
    changed = client.patch(
        f"/v1/price-feeds/{feed['id']}", json={"aggregation": "median"}, headers=h
    ).get_json()
    assert changed["sources"][1] == {k: v for k, v in feed["sources"][1].items() if k != "weight"}

    detail = client.get(f"/v1/price-feeds/{feed['id']}", headers=h).get_json()
    assert detail["publishing"] == {"last_published": None, "last_attempt": None}
    user_id = db.scalars(select(PriceFeed.user_id).where(PriceFeed.id == feed["id"])).one()
    published = PriceRound(
        feed_id=feed["id"],
        scheduled_at=T0,
        started_at=T0,
        finished_at=T0,
        status="priced",
        price=Decimal("12.5"),
        publication="queued",
        publication_reason="the feed's first publication",
    )
    unpaid = PriceRound(
        feed_id=feed["id"],
        scheduled_at=T0 + dt.timedelta(minutes=1),
        started_at=T0,
        finished_at=T0 + dt.timedelta(minutes=1),
        status="priced",
        price=Decimal("14"),
        publication="unpaid",
        publication_reason="insufficient funds: a publication costs about 0.01 GAS",
    )
    db.add_all([published, unpaid])
    db.flush()
    tx_hash = "0x" + "cd" * 32
    db.add(
        NeoAction(
            user_id=user_id,
            contract="0x" + "ef" * 20,
            method="update",
            args=[
                f"feed:{feed['id']}",
                {"$neo": "Integer", "value": "1250000000"},
                1,
                published.id,
            ],
            status="confirmed",
            tx_hash=tx_hash,
            block_index=77,
            fee_charged=Decimal("0.0123"),
            price_round_id=published.id,
            charge_type="pricefeed",
            as_publisher=True,
        )
    )
    db.flush()
    detail = client.get(f"/v1/price-feeds/{feed['id']}", headers=h).get_json()
    assert detail["publishing"]["last_published"] == {
        "round_id": published.id,
        "price": "12.50000000",
        "timestamp": T0.isoformat(),
        "contract": "0x" + "ef" * 20,
        "key": f"feed:{feed['id']}",
        "tx_hash": tx_hash,
        "block_index": 77,
    }
    attempt = detail["publishing"]["last_attempt"]
    assert (attempt["id"], attempt["publication"], attempt["action"]) == (
        unpaid.id,
        "unpaid",
        None,
    )
    assert attempt["publication_reason"].startswith("insufficient funds")
    last = client.get(f"/v1/price-feeds/{feed['id']}/latest", headers=h).get_json()
    assert last["published"]["tx_hash"] == tx_hash
    listed = client.get(f"/v1/price-feeds/{feed['id']}/rounds", headers=h).get_json()["items"]
    assert [(r["id"], r["publication"]) for r in listed] == [
        (unpaid.id, "unpaid"),
        (published.id, "queued"),
    ]
    assert listed[1]["action"]["tx_hash"] == tx_hash
    assert listed[1]["action"]["fee_charged"] == "0.01230000"
    # The tenant's actions list the publication too.
    actions = client.get("/v1/neo/actions", headers=h).get_json()["items"]
    assert [(a["price_round_id"], a["charge_type"]) for a in actions] == [
        (published.id, "pricefeed")
    ]


def test_metrics_show_feeds_stale_feeds_and_publications_in_flight(
    client: FlaskClient, db: Session
) -> None:
    h = tenant(client)
    ids = [created(client, h)["id"] for _ in range(4)]  # every 60 s
    fresh, stale, never, paused = ids
    client.post(f"/v1/price-feeds/{paused}/pause", headers=h)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db.execute(
        update(PriceFeed)
        .where(PriceFeed.id.in_([stale, never, paused]))
        .values(created_at=long_ago)
    )
    user_id = db.scalars(select(PriceFeed.user_id).where(PriceFeed.id == fresh)).one()
    for feed_id, at in ((fresh, dt.datetime.now(dt.UTC)), (stale, long_ago)):
        db.add(
            PriceRound(
                feed_id=feed_id,
                scheduled_at=at,
                started_at=at,
                finished_at=at,
                status="priced",
                price=Decimal("12.5"),
                publication="queued",
            )
        )
    db.flush()
    # A failed round after the stale feed's old price does not make it fresh.
    db.add(
        PriceRound(
            feed_id=stale,
            scheduled_at=dt.datetime.now(dt.UTC),
            started_at=dt.datetime.now(dt.UTC),
            finished_at=dt.datetime.now(dt.UTC),
            status="failed",
            reason="0 of 3 sources usable, 1 needed",
        )
    )
    round_id = db.scalars(select(PriceRound.id).where(PriceRound.feed_id == fresh)).one()
    db.add(
        NeoAction(
            user_id=user_id,
            contract="0x" + "ef" * 20,
            method="update",
            status="pending",
            price_round_id=round_id,
            charge_type="pricefeed",
            as_publisher=True,
        )
    )
    db.flush()
    text = api_figures(client.application)
    assert 'neosl_price_feeds{status="active"} 3.0' in text
    assert 'neosl_price_feeds{status="paused"} 1.0' in text
    # The stale feed's last price is an hour old, the other never priced in an hour; the
    # paused one does not count.
    assert "neosl_price_feeds_stale 2.0" in text
    assert 'neosl_price_publications_in_flight{status="pending"} 1.0' in text
    assert 'neosl_price_publications_in_flight{status="queued"} 0.0' in text
