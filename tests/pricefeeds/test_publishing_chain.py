"""Price rounds published on the real chain through the relay: to the service's PriceFeed
contract (witnessed by the hot wallet, its publisher) or to a tenant's own contract
(witnessed by the tenant's signer), charged as ``pricefeed``, on deviation, never two in
flight; a tenant who cannot pay keeps its rounds, unpublished, with the reason on the feed.

Rounds are queued (``clock.claim_due``) and run (``pricing.run_round``) in-process against
local markets; the relay's service functions are called directly, as in test_neo_actions.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.gas.money import from_units
from neosl.models import GasAccount, NeoAction, PriceFeed, PriceRound, Transaction
from neosl.neo.addresses import address_to_script_hash
from neosl.neo.stack import decode_stack
from neosl.pricefeeds import catalog
from neosl_api.services import pricefeeds
from neosl_devstack import contracts, devnet
from neosl_devstack.markets import FakeMarkets
from neosl_gasbank import actions as relay_actions
from neosl_gasbank.hot_wallet import HotWallet
from neosl_pricefeed import clock, pricing
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources.base import new_client
from tests.chain import Chain
from tests.contracts.test_consumer import dry_run
from tests.onchain.test_actions import new_tenant
from tests.waiting import wait_until

pytestmark = pytest.mark.neo

SOURCES = {"binance": "NEOUSDT", "okx": "NEO-USDT", "kucoin": "NEO-USDT"}
SERVICE_FEE = Decimal("0.002")


def deploy_pricefeed(chain: Chain, publisher: str) -> str:
    """A fresh PriceFeed contract whose publisher is the address ``publisher``."""
    nef, manifest = contracts.artefact("pricefeed")
    renamed = {**manifest, "name": f"PriceFeed-{secrets.token_hex(4)}"}
    return devnet.deploy(
        chain.rpc, chain.wallet, chain.password, nef, renamed, address_to_script_hash(publisher)
    )


def quote(markets: FakeMarkets, price: str) -> None:
    for name, symbol in SOURCES.items():
        markets.set_price(name, symbol, price)


@pytest.fixture
def markets() -> Iterator[FakeMarkets]:
    with FakeMarkets() as fake:
        quote(fake, "12.50")
        yield fake


@pytest.fixture
def service_contract(chain: Chain, hot: HotWallet) -> str:
    return deploy_pricefeed(chain, hot.address)


@pytest.fixture
def pub_settings(settings: Settings, markets: FakeMarkets, service_contract: str) -> Settings:
    assert settings.relay_key is not None, "the test stack configures the relay's key"
    urls = tuple((name, markets.base_url(name)) for name in catalog.NAMES)
    return dataclasses.replace(
        settings,
        price_source_urls=urls,
        price_source_timeout_seconds=2.0,
        pricefeed_contract=service_contract,
        pricefeed_service_fee=SERVICE_FEE,
        # The relay asks for a balance covering this cap before it test-invokes a
        # publication: owners here hold a few GAS.
        action_max_fee=Decimal(1),
    )


def new_feed(
    sessions: sessionmaker[Session], user_id: int, target: dict[str, str] | None = None
) -> int:
    with sessions() as db:
        row = PriceFeed(
            user_id=user_id,
            asset_pair="NEO/USD",
            frequency=10,
            sources=[{"name": s} for s in SOURCES],
            aggregation="median",
            deviation=Decimal("1"),
            heartbeat=3600,
            min_sources=2,
            target=target,
            next_round_at=dt.datetime.now(dt.UTC),
        )
        db.add(row)
        db.commit()
        return row.id


def one_round(
    sessions: sessionmaker[Session], settings: Settings, producer: Celery, feed_id: int
) -> PriceRound:
    """Run the feed's round now (its schedule is moved to now first)."""
    with sessions() as db:
        db.execute(
            update(PriceFeed)
            .where(PriceFeed.id == feed_id)
            .values(next_round_at=dt.datetime.now(dt.UTC))
        )
        db.commit()
        scheduled = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 50)
    (mine,) = [s for s in scheduled if s.feed_id == feed_id]
    with (
        new_client() as client,
        pricing.generic_fetcher(settings) as fetcher,
        ThreadPoolExecutor(8) as pool,
    ):
        pricing.run_round(
            sessions,
            settings,
            Dispatcher(producer),
            pricing.Askers(client, fetcher, pool),
            RoundMetrics(),
            mine.round_id,
        )
    with sessions() as db:
        row = db.get_one(PriceRound, mine.round_id)
        assert row.status == "priced", row.reason
        return row


def action_of(sessions: sessionmaker[Session], round_id: int) -> NeoAction:
    with sessions() as db:
        return db.scalars(select(NeoAction).where(NeoAction.price_round_id == round_id)).one()


def relay_and_settle(
    sessions: sessionmaker[Session],
    chain: Chain,
    settings: Settings,
    hot: HotWallet,
    action_id: int,
) -> NeoAction:
    relay_actions.relay_action(sessions, chain.rpc, settings, hot, action_id)

    def settled() -> NeoAction | None:
        relay_actions.reconcile(sessions, chain.rpc, settings, hot)
        with sessions() as db:
            action = db.get_one(NeoAction, action_id)
        return action if action.status in ("confirmed", "failed") else None

    action: NeoAction = wait_until(settled, f"action {action_id} settled", timeout=60)
    return action


def on_chain(chain: Chain, contract: str, feed_id: int) -> Any:
    result = dry_run(chain.rpc, contract, "get_latest", f"feed:{feed_id}")
    assert result["state"] == "HALT", result.get("exception")
    (value,) = decode_stack(result["stack"])
    return value


def balance(sessions: sessionmaker[Session], account_id: int) -> Decimal:
    with sessions() as db:
        return db.get_one(GasAccount, account_id).balance


def test_rounds_publish_to_the_service_contract_on_deviation_and_are_charged(
    chain: Chain,
    pub_settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    hot: HotWallet,
    markets: FakeMarkets,
    service_contract: str,
) -> None:
    tenant = new_tenant(sessions, pub_settings, "5")
    feed_id = new_feed(sessions, tenant.user_id)

    first = one_round(sessions, pub_settings, producer, feed_id)
    assert first.publication == "queued"
    assert first.publication_reason == "the feed's first publication"
    queued = action_of(sessions, first.id)
    assert (queued.contract, queued.method) == (service_contract, "update")
    assert (queued.charge_type, queued.as_publisher, queued.user_id) == (
        "pricefeed",
        True,
        tenant.user_id,
    )

    # While it is in flight, a due round waits: a later round landing first would make
    # this one FAULT on the contract's stale-round check.
    quote(markets, "14.00")
    waiting = one_round(sessions, pub_settings, producer, feed_id)
    assert waiting.publication == "skipped"
    assert f"round {first.id}'s publication is still in flight" in (
        waiting.publication_reason or ""
    )

    action = relay_and_settle(sessions, chain, pub_settings, hot, queued.id)
    assert action.status == "confirmed", action.failure_reason
    assert action.tx_hash is not None
    # Witnessed by the hot wallet alone, the contract's publisher.
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    assert [(s["account"], s["scopes"]) for s in raw["signers"]] == [
        (f"0x{address_to_script_hash(hot.address)}", "CalledByEntry")
    ]
    chain_fees = from_units(int(raw["sysfee"])) + from_units(int(raw["netfee"]))
    assert action.fee_charged == chain_fees + SERVICE_FEE
    assert balance(sessions, tenant.account_id) == Decimal(5) - action.fee_charged
    with sessions() as db:
        charge = db.scalars(
            select(Transaction).where(Transaction.reference == f"action:{action.id}")
        ).one()
        assert (charge.type, charge.status, charge.amount) == (
            "pricefeed",
            "confirmed",
            action.fee_charged,
        )
        assert ledger.verify(db) == []

    # The contract holds what the API says was published last.
    with sessions() as db:
        latest = pricefeeds.latest(db, tenant.user_id, feed_id)
    published = latest["published"]
    assert published is not None
    assert (published["round_id"], published["price"], published["tx_hash"]) == (
        first.id,
        Decimal("12.5"),
        action.tx_hash,
    )
    assert published["key"] == f"feed:{feed_id}"
    assert first.finished_at is not None
    assert on_chain(chain, service_contract, feed_id) == [
        1_250_000_000,
        int(first.finished_at.timestamp() * 1000),
        first.id,
    ]

    # The price moved 12 % from the published 12.50: due again.
    moved = one_round(sessions, pub_settings, producer, feed_id)
    assert moved.publication == "queued"
    assert "moved 12.0000% from round" in (moved.publication_reason or "")
    second = relay_and_settle(sessions, chain, pub_settings, hot, action_of(sessions, moved.id).id)
    assert second.status == "confirmed", second.failure_reason
    assert on_chain(chain, service_contract, feed_id)[2] == moved.id

    # Within the deviation (0.5 % < 1 %) and before the heartbeat: not published.
    quote(markets, "14.07")
    calm = one_round(sessions, pub_settings, producer, feed_id)
    assert calm.publication == "not_due"
    with sessions() as db:
        assert db.scalars(select(NeoAction).where(NeoAction.price_round_id == calm.id)).all() == []
        detail = pricefeeds.feed_detail(db, tenant.user_id, feed_id)
    assert detail["publishing"]["last_published"]["round_id"] == moved.id
    assert detail["publishing"]["last_attempt"].id == moved.id

    # Deleting the feed deletes its rounds; its publications and their charges stay.
    with sessions() as db:
        pricefeeds.delete_feed(db, tenant.user_id, feed_id)
    with sessions() as db:
        kept = db.get_one(NeoAction, action.id)
        assert (kept.price_round_id, kept.status, kept.charge_type) == (
            None,
            "confirmed",
            "pricefeed",
        )
        assert ledger.verify(db) == []


def test_a_tenant_who_cannot_pay_keeps_its_rounds_unpublished_with_the_reason(
    chain: Chain,
    pub_settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    hot: HotWallet,
) -> None:
    broke = new_tenant(sessions, pub_settings, "0")
    feed_id = new_feed(sessions, broke.user_id)
    unpaid = one_round(sessions, pub_settings, producer, feed_id)
    assert unpaid.price == Decimal("12.5")
    assert unpaid.publication == "unpaid"
    assert "insufficient funds" in (unpaid.publication_reason or "")
    with sessions() as db:
        assert db.scalars(select(NeoAction).where(NeoAction.user_id == broke.user_id)).all() == []
        detail = pricefeeds.feed_detail(db, broke.user_id, feed_id)
    attempt = detail["publishing"]["last_attempt"]
    assert (attempt.id, attempt.publication) == (unpaid.id, "unpaid")
    assert detail["publishing"]["last_published"] is None

    # Enough for the advisory check, not for the fees: the relay refuses to hold them,
    # nothing is sent or charged, and the reason shows on the feed.
    poor = new_tenant(sessions, pub_settings, "0.0021")
    poor_feed = new_feed(sessions, poor.user_id)
    tried = one_round(sessions, pub_settings, producer, poor_feed)
    assert tried.publication == "queued"
    action_id = action_of(sessions, tried.id).id
    assert relay_actions.relay_action(sessions, chain.rpc, pub_settings, hot, action_id) == "failed"
    with sessions() as db:
        failed = db.get_one(NeoAction, action_id)
        assert failed.tx_hash is None
        assert (failed.failure_reason or "").startswith("insufficient funds")
        detail = pricefeeds.feed_detail(db, poor.user_id, poor_feed)
        assert ledger.verify(db) == []
    assert detail["publishing"]["last_attempt"].action.failure_reason == failed.failure_reason
    assert balance(sessions, poor.account_id) == Decimal("0.0021")
    # A failed publication does not count: the next round is due again.
    again = one_round(sessions, pub_settings, producer, poor_feed)
    assert again.publication == "queued"


def test_a_feed_targeting_the_tenants_contract_is_signed_by_the_tenants_signer(
    chain: Chain,
    pub_settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    hot: HotWallet,
    service_contract: str,
) -> None:
    tenant = new_tenant(sessions, pub_settings, "5")
    own = deploy_pricefeed(chain, tenant.signer)
    feed_id = new_feed(sessions, tenant.user_id, {"contract": own, "method": "update"})
    priced = one_round(sessions, pub_settings, producer, feed_id)
    queued = action_of(sessions, priced.id)
    assert (queued.contract, queued.as_publisher, queued.charge_type) == (own, False, "pricefeed")
    action = relay_and_settle(sessions, chain, pub_settings, hot, queued.id)
    assert action.status == "confirmed", action.failure_reason
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    assert [(s["account"], s["scopes"]) for s in raw["signers"]] == [
        (f"0x{address_to_script_hash(hot.address)}", "None"),
        (f"0x{address_to_script_hash(tenant.signer)}", "CalledByEntry"),
    ]
    assert on_chain(chain, own, feed_id)[0] == 1_250_000_000
    with sessions() as db:
        latest = pricefeeds.latest(db, tenant.user_id, feed_id)
    assert latest["published"]["contract"] == own
    assert latest["published"]["key"] is None

    # A tenant pointing its feed at the service's contract gets its own signer, not the
    # publisher's: the test invocation FAULTs, nothing is sent or charged.
    intruder = new_tenant(sessions, pub_settings, "5")
    sneaky = new_feed(
        sessions, intruder.user_id, {"contract": service_contract, "method": "update"}
    )
    tried = one_round(sessions, pub_settings, producer, sneaky)
    sneaky_action = action_of(sessions, tried.id)
    assert sneaky_action.as_publisher is False
    outcome = relay_actions.relay_action(sessions, chain.rpc, pub_settings, hot, sneaky_action.id)
    assert outcome == "failed"
    with sessions() as db:
        refused = db.get_one(NeoAction, sneaky_action.id)
    assert "only the publisher can update" in (refused.failure_reason or "")
    assert balance(sessions, intruder.account_id) == Decimal(5)
    assert on_chain(chain, service_contract, sneaky) == [0, 0, 0]


def test_the_relay_signs_as_publisher_only_the_pricefeed_update(
    chain: Chain,
    pub_settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    hot: HotWallet,
) -> None:
    """Defence in depth: a publisher action naming anything else is refused unsigned."""
    tenant = new_tenant(sessions, pub_settings, "5")
    feed_id = new_feed(sessions, tenant.user_id)
    priced = one_round(sessions, pub_settings, producer, feed_id)
    action_id = action_of(sessions, priced.id).id
    with sessions() as db:
        db.execute(
            update(NeoAction)
            .where(NeoAction.id == action_id)
            .values(contract="0xd2a4cff31913016155e38e474a2c06d08be276cf", method="transfer")
        )
        db.commit()
    outcome = relay_actions.relay_action(sessions, chain.rpc, pub_settings, hot, action_id)
    assert outcome == "failed"
    with sessions() as db:
        refused = db.get_one(NeoAction, action_id)
        assert refused.tx_hash is None
        assert "only the PriceFeed contract's update" in (refused.failure_reason or "")
