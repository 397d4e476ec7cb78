"""The dev chain's committee account, which holds all of a new chain's GAS, at our service.

It is the faucet (``fund``) and the deployer of contracts (``deploy``). Only for private
chains whose committee wallet we made (``neosl-dev``, the tests); a real network's committee
is not ours to sign for.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from neo3.contracts.contract import CONTRACT_HASHES
from neo3.contracts.nef import NEF
from neo3.contracts.utils import get_contract_hash
from neo3.core.types import UInt160
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account
from neo3.wallet.wallet import Wallet

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc, RpcError
from neosl.neo.transfers import (
    build_multisig_gas_transfer,
    multisig_signer,
    signed_transaction,
    transaction_hash,
    transfer_succeeded,
)

# Long enough to outlast any wait below on any block time; the node caps it far higher.
_VALID_FOR_BLOCKS = 1000


def committee_account(wallet_path: Path, password: str) -> Account:
    """The 1-of-1 committee multisig account of a dev chain's wallet, with its key.

    Raises:
        OSError: the wallet cannot be read.
        ValueError: the wallet is not a NEP-6 wallet, the password is wrong or the wallet
            holds no single-key account to sign with.
    """
    data = json.loads(wallet_path.read_text())
    # neo-mamba wants one password per account, even for accounts sharing one key.
    passwords = [password] * len(data.get("accounts", []))
    # from_json has no return annotation.
    wallet: Wallet = Wallet.from_json(data, passwords=passwords)
    for account in wallet.accounts:
        if account.is_multisig and not account.is_watchonly:
            return account
    default = wallet.account_default
    if default is None or default.public_key is None:
        raise ValueError(f"{wallet_path} holds no single-key account")
    return wallet.import_multisig_address(1, [default.public_key])


def fund(
    rpc: NeoRpc,
    wallet_path: Path,
    password: str,
    to_address: str,
    amount: int,
    *,
    wait: bool = True,
    timeout: float = 30,
) -> str:
    """Send ``amount`` units of GAS from the dev chain's committee to ``to_address``.

    With ``wait``, returns only once the transfer is in a block and succeeded. Returns the
    transaction hash ("0x…").

    Raises:
        RuntimeError: with ``wait``: not in a block within ``timeout`` seconds, or it did
            not succeed on chain.
        OSError, ValueError: the committee wallet cannot be used (see ``committee_account``),
            or ``amount`` is not positive.
        InvalidAddress: ``to_address`` is not a Neo N3 address.
        TransferWouldFail: the committee cannot pay (an exhausted dev chain).
        RpcError, RpcUnavailable: from the node.
    """
    committee = committee_account(wallet_path, password)
    signed = build_multisig_gas_transfer(
        rpc, committee, to_address, amount, valid_for_blocks=_VALID_FOR_BLOCKS
    )
    tx_hash = rpc.send_raw_transaction(signed.raw)
    if not wait:
        return tx_hash
    log = rpc.wait_for_application_log(tx_hash, timeout=timeout)
    if log is None:
        raise RuntimeError(f"faucet transfer {tx_hash} was not in a block after {timeout} s")
    if not transfer_succeeded(log, committee.address, to_address, amount):
        execution = (log.get("executions") or [{}])[0]
        raise RuntimeError(
            f"faucet transfer {tx_hash} failed on chain: state {execution.get('vmstate')}, "
            f"exception {execution.get('exception')!r}, stack {execution.get('stack')!r}"
        )
    return tx_hash


# What ContractManagement.deploy passes to the contract's ``_deploy``: values a script can push,
# and lists of them (an Array, e.g. ``[publisher, public key]``).
DeployData = UInt160 | int | str | bytes | bool | None | list["DeployData"]

# getcontractstate for a hash nobody deployed: NEP-23's -102 "Unknown contract" (neo-go
# 0.120), -100 on nodes predating NEP-23.
_UNKNOWN_CONTRACT_CODES = (-102, -100)


class ContractExists(Exception):
    """A contract with this hash (deployer, .nef checksum, manifest name) is on chain already."""

    def __init__(self, contract_hash: str, name: str) -> None:
        super().__init__(f"contract {name!r} is deployed already as {contract_hash}")
        self.contract_hash = contract_hash
        self.name = name


class DeployWouldFail(Exception):
    """The test invocation of the deployment FAULTed; nothing was sent."""


def contract_hash(deployer: UInt160, nef: bytes, name: str) -> str:
    """The hash ("0x…") a contract gets when ``deployer`` deploys ``nef`` under ``name``.

    Raises:
        ValueError: ``nef`` is not a valid .nef file (bad magic or checksum, …).
    """
    return f"0x{get_contract_hash(deployer, _nef_checksum(nef), name)}"


def _nef_checksum(nef: bytes) -> int:
    try:
        parsed = NEF.deserialize_from_bytes(nef)
    except Exception as exc:
        # neo-mamba raises assorted errors (ValueError, struct.error, …) on bad input.
        raise ValueError(f"not a valid .nef file: {exc}") from exc
    return int(parsed.checksum)


def _is_deployed(rpc: NeoRpc, contract: str) -> bool:
    try:
        rpc.call("getcontractstate", [contract])
    except RpcError as exc:
        if exc.code in _UNKNOWN_CONTRACT_CODES or "unknown contract" in exc.message.lower():
            return False
        raise
    return True


def _deployed_hashes(application_log: dict[str, Any]) -> list[str]:
    """The hashes in ContractManagement's ``Deploy`` notifications of a HALTed log."""
    management = f"0x{CONTRACT_HASHES.MANAGEMENT}"
    found: list[str] = []
    for execution in application_log.get("executions") or []:
        if execution.get("vmstate") != "HALT":
            continue
        for note in execution.get("notifications") or []:
            if note.get("contract") != management or note.get("eventname") != "Deploy":
                continue
            try:
                raw = base64.b64decode(note["state"]["value"][0]["value"], validate=True)
            except (KeyError, IndexError, TypeError, binascii.Error):
                continue
            if len(raw) == 20:
                found.append(f"0x{UInt160(raw)}")
    return found


def deploy(
    rpc: NeoRpc,
    wallet_path: Path,
    password: str,
    nef: bytes,
    manifest: dict[str, Any],
    data: DeployData = None,
    *,
    timeout: float = 30,
) -> str:
    """Deploy a contract from the dev chain's committee account; returns its hash ("0x…").

    ``data`` is what the contract's ``_deploy`` receives (e.g. an owner's ``UInt160``, or a
    list, which arrives as an Array, such as ``[publisher, public key]``). The hash depends
    on the deployer, the .nef's checksum and the manifest's ``name``: to deploy the same .nef
    again, give the manifest another name. Returns once the deployment is in a block and
    HALTed.

    Raises:
        ContractExists: the committee deployed this .nef under this name already.
        DeployWouldFail: the test invocation FAULTed (e.g. ``_deploy`` aborted).
        RuntimeError: not in a block within ``timeout`` seconds, or it failed on chain.
        OSError, ValueError: the committee wallet cannot be used (see ``committee_account``),
            ``nef`` is not a valid .nef file or the manifest has no name.
        RpcError, RpcUnavailable: from the node (e.g. the committee cannot pay the fees).
    """
    name = manifest.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("the manifest has no name")
    committee = committee_account(wallet_path, password)
    deployer = address_to_script_hash(committee.address)
    expected = contract_hash(deployer, nef, name)
    if _is_deployed(rpc, expected):
        raise ContractExists(expected, name)
    script = (
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(
            CONTRACT_HASHES.MANAGEMENT,
            "deploy",
            [nef, json.dumps(manifest, separators=(",", ":")), data],
        )
        .to_array()
    )
    # The system fee is whatever the test run consumed, and that does not say it worked.
    test = rpc.invoke_script(script, [{"account": f"0x{deployer}", "scopes": "CalledByEntry"}])
    if test.get("state") != "HALT":
        raise DeployWouldFail(
            f"test invocation of the deployment of {name!r} faulted: "
            f"{test.get('exception') or 'no reason given'}"
        )
    tx = signed_transaction(
        rpc,
        deployer,
        multisig_signer(committee),
        script,
        system_fee=int(test["gasconsumed"]),
        valid_for_blocks=_VALID_FOR_BLOCKS,
    )
    raw = tx.to_array()
    tx_hash = transaction_hash(raw)
    rpc.send_raw_transaction(raw)
    log = rpc.wait_for_application_log(tx_hash, timeout=timeout)
    if log is None:
        raise RuntimeError(f"deployment {tx_hash} was not in a block after {timeout} s")
    if expected not in _deployed_hashes(log):
        execution = (log.get("executions") or [{}])[0]
        raise RuntimeError(
            f"deployment {tx_hash} failed on chain: state {execution.get('vmstate')}, "
            f"exception {execution.get('exception')!r}"
        )
    return expected
