"""`neosl feeds report-key`: the operator compares the service's report key with the one the
PriceFeed contract checks, and publishes a rotated key, signed by the publisher, on the real
embedded node."""

from __future__ import annotations

import base64

import pytest
from neo3.wallet.account import Account

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.pricefeeds.reports import ReportKey
from neosl_cli import reportkey
from tests.clirun import run_cli
from tests.contracts.test_consumer import Committee, funded_account
from tests.contracts.test_reports_on_chain import deploy_pricefeed, new_key

pytestmark = pytest.mark.neo


def wif(account: Account) -> str:
    assert account.private_key is not None
    return Account.private_key_to_wif(account.private_key)


def configured(key: ReportKey) -> str:
    return f"{key.id}:{base64.urlsafe_b64encode(key.private).decode()}"


def test_a_rotated_key_is_published_by_the_publisher_once(
    rpc: NeoRpc, committee: Committee, server_env: dict[str, str]
) -> None:
    publisher = funded_account(rpc, committee)
    old, new = new_key(), new_key()
    contract = deploy_pricefeed(
        rpc, committee, [address_to_script_hash(publisher.address), old.public_key]
    )
    env = {
        **server_env,
        "NSL_PRICEFEED_CONTRACT": contract,
        "NSL_REPORT_KEY": configured(new),
        "NSL_HOT_WALLET_WIF": wif(publisher),
        "NSL_DEPOSIT_ADDRESS": publisher.address,
    }
    # The contract still checks the old key: said, and nothing is sent without --publish.
    shown = run_cli(env, "feeds", "report-key")
    assert shown.returncode == 1, shown.stderr
    assert f"{new.public_key.hex()}" in shown.stdout
    assert f"PriceFeed {contract}: {old.public_key.hex()}" in shown.stdout
    assert "--publish" in shown.stderr
    assert reportkey.contract_key(rpc, contract) == old.public_key

    done = run_cli(env, "feeds", "report-key", "--publish", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published in 0x" in done.stdout
    assert reportkey.contract_key(rpc, contract) == new.public_key

    # Again: the contract holds the key already, and nothing is sent.
    again = run_cli(env, "feeds", "report-key", "--publish")
    assert again.returncode == 0, again.stderr
    assert "published" not in again.stdout
    assert "the contract checks reports against this key" in again.stdout


def test_only_the_publisher_can_publish_a_key(
    rpc: NeoRpc, committee: Committee, server_env: dict[str, str]
) -> None:
    publisher, stranger = funded_account(rpc, committee), funded_account(rpc, committee)
    key = new_key()
    contract = deploy_pricefeed(rpc, committee, [address_to_script_hash(publisher.address), None])
    env = {
        **server_env,
        "NSL_PRICEFEED_CONTRACT": contract,
        "NSL_REPORT_KEY": configured(key),
        "NSL_HOT_WALLET_WIF": wif(stranger),
        "NSL_DEPOSIT_ADDRESS": stranger.address,
    }
    assert f"PriceFeed {contract}: no key" in run_cli(env, "feeds", "report-key").stdout
    refused = run_cli(env, "feeds", "report-key", "--publish")
    assert refused.returncode == 1
    assert "only the publisher can update" in refused.stderr
    assert reportkey.contract_key(rpc, contract) == b""
    # Without a report key there is nothing to compare.
    unsigned = {k: v for k, v in env.items() if k != "NSL_REPORT_KEY"}
    assert run_cli(unsigned, "feeds", "report-key").returncode == 2
