"""Signed price reports checked on the real embedded Neo node: PriceFeed's ``verify``, called
by the example PriceConsumer in the same transaction, accepts a fresh report signed by the
key it holds and refuses forged, replayed, stale, future and other feeds' reports; only the
publisher rotates the key or changes the freshness bound.

Reports are dated from the chain's own clock (the latest block's time), never the test's.
"""

from __future__ import annotations

import base64
import itertools
from decimal import Decimal
from typing import Any

import pytest
from neo3.core.types import UInt160
from neo3.wallet.account import Account

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.neo.stack import decode, decode_stack
from neosl.pricefeeds import reports
from neosl.pricefeeds.reports import Report, ReportKey
from neosl_devstack import devnet
from tests.contracts.test_consumer import (
    Committee,
    deploy_shipped,
    dry_run,
    funded_account,
    send,
)

pytestmark = pytest.mark.neo

FEED = 7
OTHER_FEED = 8
MAX_AGE = 60_000  # ms, the default freshness bound
# Round ids of reports that must be new: one sequence for the whole module.
ROUNDS = itertools.count(1)


def new_key() -> ReportKey:
    return ReportKey("test", base64.urlsafe_b64decode(reports.new_report_key().split(":")[1]))


def block_time(rpc: NeoRpc) -> int:
    """The latest block's time (ms): what the next block's ``runtime.time`` is close to."""
    return int(rpc.block(rpc.block_count() - 1)["time"])


def signed(
    key: ReportKey,
    rpc: NeoRpc,
    *,
    feed_id: int = FEED,
    round_id: int | None = None,
    age_ms: int = 0,
    price: str = "12.34",
) -> tuple[bytes, bytes]:
    """A report ``age_ms`` older than the chain's time (negative: in the future) and its
    signature by ``key``."""
    report = Report.of(
        feed_id,
        "NEO/USD",
        Decimal(price),
        next(ROUNDS) if round_id is None else round_id,
        block_time(rpc) - age_ms,
        3,
    )
    data = report.to_bytes()
    return data, key.sign(data)


def deploy_pricefeed(
    rpc: NeoRpc, committee: Committee, data: devnet.DeployData, *, name: str = ""
) -> str:
    return deploy_shipped(rpc, committee, "pricefeed", data, name)


def hash160(contract: str) -> UInt160:
    return UInt160.from_string(contract[2:])


def refusal(result: dict[str, Any]) -> str:
    assert result["state"] == "FAULT", result.get("stack")
    return str(result["exception"])


def returned(result: dict[str, Any]) -> Any:
    assert result["state"] == "HALT", result.get("exception")
    (value,) = decode_stack(result["stack"])
    return value


@pytest.fixture(scope="module")
def publisher(rpc: NeoRpc, committee: Committee) -> Account:
    return funded_account(rpc, committee)


@pytest.fixture(scope="module")
def caller(rpc: NeoRpc, committee: Committee) -> Account:
    """Anyone: settles reports, pays for it, and is not the publisher."""
    return funded_account(rpc, committee)


@pytest.fixture(scope="module")
def key() -> ReportKey:
    return new_key()


@pytest.fixture(scope="module")
def pricefeed(rpc: NeoRpc, committee: Committee, publisher: Account, key: ReportKey) -> str:
    return deploy_pricefeed(
        rpc, committee, [address_to_script_hash(publisher.address), key.public_key]
    )


@pytest.fixture(scope="module")
def consumer(rpc: NeoRpc, committee: Committee, pricefeed: str) -> str:
    return deploy_shipped(rpc, committee, "price_consumer", [hash160(pricefeed), FEED])


def test_the_consumer_settles_on_a_fresh_report(
    rpc: NeoRpc, pricefeed: str, consumer: str, caller: Account, key: ReportKey
) -> None:
    assert returned(dry_run(rpc, pricefeed, "report_key")) == key.public_key.hex()
    assert returned(dry_run(rpc, pricefeed, "max_report_age")) == MAX_AGE
    assert returned(dry_run(rpc, consumer, "feed_id")) == FEED
    assert returned(dry_run(rpc, consumer, "pricefeed"))["hash"] == pricefeed
    assert returned(dry_run(rpc, consumer, "last_price")) == 0
    data, signature = signed(key, rpc, price="12.34")
    report = Report.from_bytes(data)

    log = send(rpc, caller, consumer, "settle", data, signature)

    (execution,) = log["executions"]
    assert execution["vmstate"] == "HALT", execution["exception"]
    assert decode_stack(execution["stack"]) == [1_234_000_000]
    verified, settled = execution["notifications"]
    assert (verified["contract"], verified["eventname"]) == (pricefeed, "ReportVerified")
    assert decode(verified["state"]) == [
        FEED,
        1_234_000_000,
        report.timestamp_ms,
        report.round_id,
    ]
    assert (settled["contract"], settled["eventname"]) == (consumer, "Settled")
    assert decode(settled["state"]) == [1_234_000_000]
    assert returned(dry_run(rpc, consumer, "last_price")) == 1_234_000_000
    assert returned(dry_run(rpc, pricefeed, "get_verified", FEED)) == [
        1_234_000_000,
        report.timestamp_ms,
        report.round_id,
    ]
    # Pushed prices are kept apart from verified ones.
    assert returned(dry_run(rpc, pricefeed, "get_latest", f"feed:{FEED}")) == [0, 0, 0]
    assert returned(dry_run(rpc, pricefeed, "get_verified", OTHER_FEED)) == [0, 0, 0]


def test_forged_reports_are_refused(
    rpc: NeoRpc, consumer: str, caller: Account, key: ReportKey
) -> None:
    data, _ = signed(key, rpc)
    by_another_key = new_key().sign(data)
    refused = dry_run(rpc, consumer, "settle", data, by_another_key, signer=caller)
    assert "bad signature" in refusal(refused)

    data, signature = signed(key, rpc)
    # One byte changed: the last field (sources used) from 3 to 2.
    altered = data[:-1] + bytes([data[-1] ^ 1])
    assert Report.from_bytes(altered).sources_used == 2
    refused = dry_run(rpc, consumer, "settle", altered, signature, signer=caller)
    assert "bad signature" in refusal(refused)
    # The signature as it came, over the bytes as they came, is fine.
    assert dry_run(rpc, consumer, "settle", data, signature, signer=caller)["state"] == "HALT"


def test_a_replayed_or_older_report_is_refused(
    rpc: NeoRpc, pricefeed: str, consumer: str, caller: Account, key: ReportKey
) -> None:
    older = signed(key, rpc)
    data, signature = signed(key, rpc)
    send(rpc, caller, consumer, "settle", data, signature)

    replayed = dry_run(rpc, consumer, "settle", data, signature, signer=caller)
    assert "report replayed or older than the last accepted" in refusal(replayed)
    # Signed before the accepted one, brought after it.
    late = dry_run(rpc, consumer, "settle", *older, signer=caller)
    assert "report replayed or older than the last accepted" in refusal(late)
    # Directly on PriceFeed too: the round is PriceFeed's, not the consumer's.
    direct = dry_run(rpc, pricefeed, "verify", data, signature, FEED, signer=caller)
    assert "report replayed or older than the last accepted" in refusal(direct)


def test_stale_and_future_reports_are_refused(
    rpc: NeoRpc, consumer: str, caller: Account, key: ReportKey
) -> None:
    for age_ms in (2 * MAX_AGE, -2 * MAX_AGE):
        data, signature = signed(key, rpc, age_ms=age_ms)
        refused = dry_run(rpc, consumer, "settle", data, signature, signer=caller)
        assert "stale report" in refusal(refused)
    # Half the bound either way is fine.
    for age_ms in (MAX_AGE // 2, -MAX_AGE // 2):
        data, signature = signed(key, rpc, age_ms=age_ms)
        accepted = dry_run(rpc, consumer, "settle", data, signature, signer=caller)
        assert accepted["state"] == "HALT", accepted.get("exception")


def test_a_report_of_another_feed_is_refused(
    rpc: NeoRpc, pricefeed: str, consumer: str, caller: Account, key: ReportKey
) -> None:
    # Signed by the right key, fresh and new: only the feed is wrong.
    data, signature = signed(key, rpc, feed_id=OTHER_FEED, price="0.01")
    refused = dry_run(rpc, consumer, "settle", data, signature, signer=caller)
    assert "report is for another feed" in refusal(refused)
    # Called for its own feed, PriceFeed accepts it.
    direct = dry_run(rpc, pricefeed, "verify", data, signature, OTHER_FEED, signer=caller)
    assert returned(direct) == 1_000_000


@pytest.fixture
def rotating(rpc: NeoRpc, committee: Committee, publisher: Account, key: ReportKey) -> str:
    """A PriceFeed of its own: its key and bound change."""
    return deploy_pricefeed(
        rpc, committee, [address_to_script_hash(publisher.address), key.public_key]
    )


def test_only_the_publisher_rotates_the_key(
    rpc: NeoRpc, rotating: str, publisher: Account, caller: Account, key: ReportKey
) -> None:
    new = new_key()
    for signer in (caller, None):
        refused = dry_run(rpc, rotating, "set_report_key", new.public_key, signer=signer)
        assert "only the publisher can update" in refusal(refused)
    for bad in (new.public_key[1:], b"\x04" + new.public_key[1:]):
        refused = dry_run(rpc, rotating, "set_report_key", bad, signer=publisher)
        assert "33-byte compressed secp256r1 public key" in refusal(refused)

    log = send(rpc, publisher, rotating, "set_report_key", new.public_key)

    (execution,) = log["executions"]
    (event,) = execution["notifications"]
    assert event["eventname"] == "ReportKeySet"
    assert decode(event["state"], bytes_as="hex") == [new.public_key.hex()]
    assert returned(dry_run(rpc, rotating, "report_key")) == new.public_key.hex()
    old_report = signed(key, rpc)
    refused = dry_run(rpc, rotating, "verify", *old_report, FEED, signer=caller)
    assert "bad signature" in refusal(refused)
    data, signature = signed(new, rpc, price="5")
    log = send(rpc, caller, rotating, "verify", data, signature, FEED)
    assert decode_stack(log["executions"][0]["stack"]) == [500_000_000]


def test_only_the_publisher_sets_the_freshness_bound(
    rpc: NeoRpc, rotating: str, publisher: Account, caller: Account, key: ReportKey
) -> None:
    refused = dry_run(rpc, rotating, "set_max_report_age", 5_000, signer=caller)
    assert "only the publisher can update" in refusal(refused)
    for bad in (0, -1, 86_400_001):
        refused = dry_run(rpc, rotating, "set_max_report_age", bad, signer=publisher)
        assert "between 1 ms and one day" in refusal(refused)
    thirty_seconds_old = signed(key, rpc, age_ms=30_000)
    fine = dry_run(rpc, rotating, "verify", *thirty_seconds_old, FEED, signer=caller)
    assert fine["state"] == "HALT", fine.get("exception")

    log = send(rpc, publisher, rotating, "set_max_report_age", 5_000)

    (event,) = log["executions"][0]["notifications"]
    assert (event["eventname"], decode(event["state"])) == ("MaxReportAgeSet", [5_000])
    assert returned(dry_run(rpc, rotating, "max_report_age")) == 5_000
    refused = dry_run(rpc, rotating, "verify", *thirty_seconds_old, FEED, signer=caller)
    assert "stale report" in refusal(refused)


def test_without_a_key_verify_aborts(
    rpc: NeoRpc, committee: Committee, publisher: Account, key: ReportKey
) -> None:
    # The deploy data of before reports (the publisher alone) still deploys, without a key.
    contract = deploy_pricefeed(rpc, committee, address_to_script_hash(publisher.address))
    assert returned(dry_run(rpc, contract, "report_key")) == ""
    assert returned(dry_run(rpc, contract, "publisher"))["address"] == publisher.address
    data, signature = signed(key, rpc)
    refused = dry_run(rpc, contract, "verify", data, signature, FEED)
    assert "no report key is set" in refusal(refused)


def test_deploy_data_forms(rpc: NeoRpc, committee: Committee, publisher: Account) -> None:
    who = address_to_script_hash(publisher.address)
    # [publisher, null]: no key yet; [null, key]: the deployer publishes.
    keyless = deploy_pricefeed(rpc, committee, [who, None])
    assert returned(dry_run(rpc, keyless, "report_key")) == ""
    assert returned(dry_run(rpc, keyless, "publisher"))["address"] == publisher.address
    key = new_key()
    by_deployer = deploy_pricefeed(rpc, committee, [None, key.public_key])
    assert returned(dry_run(rpc, by_deployer, "report_key")) == key.public_key.hex()
    deployer = devnet.committee_account(committee.wallet, committee.password)
    assert returned(dry_run(rpc, by_deployer, "publisher"))["address"] == deployer.address
    refused: list[tuple[devnet.DeployData, str]] = [
        ([who, key.public_key[:32]], "33-byte compressed secp256r1 public key"),
        ([who], "deploy data must be the publisher's Hash160"),
        ([who, key.public_key, 1], "deploy data must be the publisher's Hash160"),
        ("publisher", "deploy data must be the publisher's Hash160"),
    ]
    for bad, message in refused:
        with pytest.raises(devnet.DeployWouldFail, match=message):
            deploy_pricefeed(rpc, committee, bad)


def test_the_consumer_refuses_bad_deploy_data(rpc: NeoRpc, committee: Committee) -> None:
    refused: list[devnet.DeployData] = [None, [FEED], ["not a hash", FEED], [UInt160.zero(), "7"]]
    for bad in refused:
        with pytest.raises(devnet.DeployWouldFail, match=r"must be \[PriceFeed contract"):
            deploy_shipped(rpc, committee, "price_consumer", bad)
