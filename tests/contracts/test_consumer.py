"""The Consumer contract on the real embedded Neo node, deployed the way operators do it.

Each test module deploys its own copies under unique names: a contract's hash depends on
the deployer, the .nef's checksum and the manifest's name, and the committee deploys them all.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from neo3.core.types import UInt160
from neo3.network.payloads.transaction import Transaction
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account

from neosl.neo.addresses import address_to_script_hash, script_hash_to_address
from neosl.neo.rpc import NeoRpc
from neosl.neo.stack import decode_stack
from neosl.neo.transfers import signed_transaction
from neosl_cli.main import main
from neosl_devstack import contracts, devnet
from tests.clirun import run_cli

pytestmark = pytest.mark.neo

GAS = 10**8
WAIT = 10.0  # seconds; blocks come every 250 ms


@dataclass(frozen=True)
class Committee:
    wallet: Path
    password: str


def funded_account(rpc: NeoRpc, committee: Committee) -> Account:
    account = Account.create_new()
    devnet.fund(rpc, committee.wallet, committee.password, account.address, 5 * GAS, timeout=WAIT)
    return account


def unique_name() -> str:
    return f"Consumer-{secrets.token_hex(4)}"


def deploy_shipped(
    rpc: NeoRpc, committee: Committee, contract: str, data: devnet.DeployData, name: str = ""
) -> str:
    """A shipped contract deployed by the committee under a fresh manifest name (or
    ``name``), so each test may have its own."""
    nef, manifest = contracts.artefact(contract)
    renamed = {**manifest, "name": name or f"{manifest['name']}-{secrets.token_hex(4)}"}
    return devnet.deploy(
        rpc, committee.wallet, committee.password, nef, renamed, data, timeout=WAIT
    )


def deploy_consumer(rpc: NeoRpc, committee: Committee, owner: UInt160 | None) -> str:
    return deploy_shipped(rpc, committee, "consumer", owner, unique_name())


@pytest.fixture(scope="module")
def owner(rpc: NeoRpc, committee: Committee) -> Account:
    return funded_account(rpc, committee)


@pytest.fixture(scope="module")
def consumer(rpc: NeoRpc, committee: Committee, owner: Account) -> str:
    return deploy_consumer(rpc, committee, address_to_script_hash(owner.address))


def script(contract: str, method: str, *args: object) -> bytes:
    return bytes(
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(UInt160.from_string(contract[2:]), method, list(args))
        .to_array()
    )


def dry_run(
    rpc: NeoRpc, contract: str, method: str, *args: object, signer: Account | None = None
) -> dict[str, Any]:
    """The test invocation (nothing persists) of the method, witnessed by ``signer``."""
    signers = (
        []
        if signer is None
        else [{"account": f"0x{signer.script_hash}", "scopes": "CalledByEntry"}]
    )
    return rpc.invoke_script(script(contract, method, *args), signers)


def send(
    rpc: NeoRpc, account: Account, contract: str, method: str, *args: object
) -> dict[str, Any]:
    """Run the method in a transaction signed by ``account``; its application log."""
    body = script(contract, method, *args)
    test = dry_run(rpc, contract, method, *args, signer=account)
    assert test["state"] == "HALT", test.get("exception")

    def sign(tx: Transaction, magic: int) -> None:
        account.sign_tx(tx, magic)

    tx = signed_transaction(
        rpc,
        account.script_hash,
        sign,
        body,
        system_fee=int(test["gasconsumed"]),
        valid_for_blocks=100,
    )
    tx_hash = rpc.send_raw_transaction(tx.to_array())
    log = rpc.wait_for_application_log(tx_hash, timeout=WAIT)
    assert log is not None, f"{tx_hash} not in a block after {WAIT} s"
    return log


def decode_bytes(item: dict[str, Any]) -> bytes:
    assert item["type"] == "ByteString", item
    return base64.b64decode(item["value"])


def returned_str(result: dict[str, Any]) -> str:
    assert result["state"] == "HALT", result.get("exception")
    (item,) = result["stack"]
    return decode_bytes(item).decode()


def returned_owner(rpc: NeoRpc, contract: str) -> str:
    result = dry_run(rpc, contract, "owner")
    assert result["state"] == "HALT", result.get("exception")
    (item,) = result["stack"]
    return script_hash_to_address(UInt160(decode_bytes(item)))


def test_owner_is_the_deploy_data(rpc: NeoRpc, consumer: str, owner: Account) -> None:
    assert returned_owner(rpc, consumer) == owner.address


def test_owner_sets_a_value_and_the_event_says_so(
    rpc: NeoRpc, consumer: str, owner: Account
) -> None:
    assert returned_str(dry_run(rpc, consumer, "get", "colour")) == ""

    log = send(rpc, owner, consumer, "set", "colour", "blue ✓")

    (execution,) = log["executions"]
    assert execution["vmstate"] == "HALT"
    (event,) = execution["notifications"]
    assert event["contract"] == consumer
    assert event["eventname"] == "ValueSet"
    assert event["state"]["type"] == "Array"
    assert [decode_bytes(v).decode() for v in event["state"]["value"]] == ["colour", "blue ✓"]
    assert returned_str(dry_run(rpc, consumer, "get", "colour")) == "blue ✓"


def test_anyone_else_cannot_write(rpc: NeoRpc, consumer: str, committee: Committee) -> None:
    stranger = funded_account(rpc, committee)
    result = dry_run(rpc, consumer, "set", "colour", "red", signer=stranger)
    assert result["state"] == "FAULT"
    assert "only the owner can write" in result["exception"]
    # No signer at all: no witness either.
    unsigned = dry_run(rpc, consumer, "set", "colour", "red")
    assert unsigned["state"] == "FAULT"
    assert "only the owner can write" in unsigned["exception"]


def test_fail_faults_with_the_reason(rpc: NeoRpc, consumer: str, owner: Account) -> None:
    result = dry_run(rpc, consumer, "fail", "x marks the spot", signer=owner)
    assert result["state"] == "FAULT"
    assert "x marks the spot" in result["exception"]


def test_burn_costs_more_gas_the_larger_n(rpc: NeoRpc, consumer: str, owner: Account) -> None:
    costs = []
    for n in (0, 10, 100):
        result = dry_run(rpc, consumer, "burn", n, signer=owner)
        assert result["state"] == "HALT", result.get("exception")
        costs.append(int(result["gasconsumed"]))
    assert costs[0] < costs[1] < costs[2]
    negative = dry_run(rpc, consumer, "burn", -1, signer=owner)
    assert negative["state"] == "FAULT"
    assert "n must not be negative" in negative["exception"]
    stranger = dry_run(rpc, consumer, "burn", 1)
    assert stranger["state"] == "FAULT"
    assert "only the owner can write" in stranger["exception"]


def test_without_deploy_data_the_deployer_owns_it(rpc: NeoRpc, committee: Committee) -> None:
    contract = deploy_consumer(rpc, committee, None)
    deployer = devnet.committee_account(committee.wallet, committee.password)
    assert returned_owner(rpc, contract) == deployer.address


def test_deploying_the_same_name_twice_is_refused(rpc: NeoRpc, committee: Committee) -> None:
    nef, manifest = contracts.artefact("consumer")
    renamed = {**manifest, "name": unique_name()}
    first = devnet.deploy(rpc, committee.wallet, committee.password, nef, renamed, timeout=WAIT)
    with pytest.raises(devnet.ContractExists) as caught:
        devnet.deploy(rpc, committee.wallet, committee.password, nef, renamed, timeout=WAIT)
    assert caught.value.contract_hash == first
    assert caught.value.name == renamed["name"]


@pytest.fixture
def devnet_env(server_env: dict[str, str], committee: Committee) -> dict[str, str]:
    return {
        **server_env,
        "NSL_DEVNET_WALLET": str(committee.wallet),
        "NSL_DEVNET_WALLET_PASSWORD": committee.password,
    }


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def neosl(
    devnet_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Outcome]:
    """``neosl ARGS`` through the command's main function, in this process (saves its start-up)."""
    for key, value in devnet_env.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


def test_cli_deploys_and_prints_the_hash(
    devnet_env: dict[str, str], rpc: NeoRpc, neosl: Callable[..., Outcome]
) -> None:
    address = Account.create_new().address
    name = unique_name()
    args = ("devnet", "deploy", "consumer", "--owner", address, "--name", name)
    # Once as an operator runs it: a process of its own.
    deployed = run_cli(devnet_env, *args)
    assert deployed.returncode == 0, deployed.stderr
    contract = deployed.stdout.strip()
    assert contract.startswith("0x")
    assert len(contract) == 42
    assert returned_owner(rpc, contract) == address

    again = neosl(*args)
    assert again.returncode == 1
    assert again.stdout == ""
    assert contract in again.stderr
    assert "--name" in again.stderr


def test_cli_deploys_a_nef_file_by_path(
    rpc: NeoRpc, committee: Committee, neosl: Callable[..., Outcome], tmp_path: Path
) -> None:
    nef, manifest = contracts.artefact("consumer")
    (tmp_path / "mine.nef").write_bytes(nef)
    (tmp_path / "mine.manifest.json").write_text(json.dumps({**manifest, "name": unique_name()}))
    deployed = neosl("devnet", "deploy", str(tmp_path / "mine.nef"))
    assert deployed.returncode == 0, deployed.stderr
    deployer = devnet.committee_account(committee.wallet, committee.password)
    assert returned_owner(rpc, deployed.stdout.strip()) == deployer.address


def test_cli_deploys_with_typed_data(
    rpc: NeoRpc, committee: Committee, neosl: Callable[..., Outcome]
) -> None:
    """The price consumer's deploy data, [PriceFeed hash, feed id], typed as function
    arguments are."""
    pricefeed = "0x" + "ab" * 20
    data = json.dumps([{"$neo": "Hash160", "value": pricefeed}, 7])
    deployed = neosl("devnet", "deploy", "price_consumer", "--data", data, "--name", unique_name())
    assert deployed.returncode == 0, deployed.stderr
    contract = deployed.stdout.strip()
    (feed,) = decode_stack(dry_run(rpc, contract, "feed_id")["stack"])
    (stored,) = decode_stack(dry_run(rpc, contract, "pricefeed")["stack"])
    assert feed == 7
    assert isinstance(stored, dict)
    assert stored["hash"] == pricefeed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "neither a known contract (consumer"),
        (("consumer", "--owner", "NotAnAddress"), "34 characters"),
        (("/nowhere/x.nef",), "No such file"),
        (("price_consumer", "--data", "[1,"), "--data is not JSON"),
        (("price_consumer", "--data", '[{"$neo": "Hash160", "value": "0x12"}, 1]'), "--data: "),
        (
            ("price_consumer", "--data", "[]", "--owner", "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs"),
            "--owner or --data, not both",
        ),
    ],
)
def test_cli_refuses_bad_input(
    neosl: Callable[..., Outcome], args: tuple[str, ...], message: str
) -> None:
    result = neosl("devnet", "deploy", *args)
    assert result.returncode == 2
    assert message in result.stderr
