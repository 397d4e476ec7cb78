"""The dev chain's faucet: GAS from the committee account, which holds all of a new chain's GAS.

Only for private chains whose committee wallet we made (``neosl-dev``, the tests); a real
network's committee is not ours to sign for.
"""

from __future__ import annotations

import json
from pathlib import Path

from neo3.wallet.account import Account
from neo3.wallet.wallet import Wallet

from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import build_multisig_gas_transfer, transfer_succeeded

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
