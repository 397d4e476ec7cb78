"""The PriceFeed contract on the real embedded Neo node: only the publisher updates, stale
rounds are refused, keys are independent, the event and get_latest say what was stored."""

from __future__ import annotations

from typing import Any

import pytest
from neo3.wallet.account import Account

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.neo.stack import decode, decode_stack
from tests.contracts.test_consumer import (
    Committee,
    deploy_shipped,
    dry_run,
    funded_account,
    send,
)

pytestmark = pytest.mark.neo

PRICE = 1_234_000_000  # 12.34 with 8 decimals
STAMP = 1_764_158_400_000  # milliseconds


@pytest.fixture(scope="module")
def publisher(rpc: NeoRpc, committee: Committee) -> Account:
    return funded_account(rpc, committee)


@pytest.fixture(scope="module")
def pricefeed(rpc: NeoRpc, committee: Committee, publisher: Account) -> str:
    return deploy_shipped(rpc, committee, "pricefeed", address_to_script_hash(publisher.address))


def latest(rpc: NeoRpc, contract: str, key: str) -> Any:
    result = dry_run(rpc, contract, "get_latest", key)
    assert result["state"] == "HALT", result.get("exception")
    (value,) = decode_stack(result["stack"])
    return value


def test_the_publisher_updates_and_reads_back(
    rpc: NeoRpc, pricefeed: str, publisher: Account
) -> None:
    (who,) = decode_stack(dry_run(rpc, pricefeed, "publisher")["stack"])
    assert isinstance(who, dict)
    assert who["address"] == publisher.address
    assert latest(rpc, pricefeed, "feed:1") == [0, 0, 0]
    log = send(rpc, publisher, pricefeed, "update", "feed:1", PRICE, STAMP, 7)
    (execution,) = log["executions"]
    assert execution["vmstate"] == "HALT"
    (event,) = execution["notifications"]
    assert (event["contract"], event["eventname"]) == (pricefeed, "PriceUpdated")
    assert decode(event["state"]) == ["feed:1", PRICE, STAMP, 7]
    assert latest(rpc, pricefeed, "feed:1") == [PRICE, STAMP, 7]
    # Keys are independent.
    assert latest(rpc, pricefeed, "feed:2") == [0, 0, 0]


def test_others_and_stale_rounds_are_refused(
    rpc: NeoRpc, pricefeed: str, publisher: Account, committee: Committee
) -> None:
    send(rpc, publisher, pricefeed, "update", "feed:3", PRICE, STAMP, 5)
    stranger = funded_account(rpc, committee)
    refused = dry_run(rpc, pricefeed, "update", "feed:3", PRICE, STAMP, 6, signer=stranger)
    assert refused["state"] == "FAULT"
    assert "only the publisher can update" in refused["exception"]
    unsigned = dry_run(rpc, pricefeed, "update", "feed:3", PRICE, STAMP, 6)
    assert unsigned["state"] == "FAULT"
    for round_id in (5, 4):
        stale = dry_run(
            rpc, pricefeed, "update", "feed:3", PRICE, STAMP, round_id, signer=publisher
        )
        assert stale["state"] == "FAULT"
        assert "a newer round is stored" in stale["exception"]
    bad = dry_run(rpc, pricefeed, "update", "feed:3", 0, STAMP, 9, signer=publisher)
    assert bad["state"] == "FAULT"
    assert latest(rpc, pricefeed, "feed:3") == [PRICE, STAMP, 5]
