"""The dev stack's starter balances: a pool of real deposits a new tenant gets one of.

The API gives each new tenant one of them when ``NSL_DEV_STARTER_GAS`` is set
(``neosl_api.services.starter``). Here the dev stack keeps the pool filled: a faucet key of
its own (kept in its data folder), funded from the dev chain's committee, sends the hot
wallet transfers of exactly the starter amount, many in one transaction. Nobody's account
has the faucet's address, so each transfer is recorded as an unmatched deposit, right away
(the chain follower may start after that block; it records the same transfers again as
duplicates, which changes nothing).
"""

from __future__ import annotations

import logging
import secrets
import threading
from decimal import Decimal
from pathlib import Path

from neo3.core.types import UInt160
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.db import make_engine
from neosl.gas import ledger
from neosl.gas.money import from_units, to_units
from neosl.models import UnmatchedDeposit
from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import GAS_CONTRACT, NeoRpc
from neosl.neo.transfers import TransferWouldFail, gas_transfers, tested_transaction
from neosl_devstack import devnet

log = logging.getLogger(__name__)

FAUCET_FILE = "faucet.wif"
# Deposits kept ready, and how few there may be before more are made.
POOL_SIZE = 50
LOW_WATER = 20
# How often the pool is looked at while the dev stack runs.
CHECK_SECONDS = 5.0
# What the faucet asks the committee for when it runs dry: many pools' worth.
_FAUCET_REFILL_POOLS = 20
_VALID_FOR_BLOCKS = 100


def faucet_wif(root: Path) -> str:
    """The dev stack's faucet key, made once and kept in ``root`` (0600)."""
    path = root / FAUCET_FILE
    if path.exists():
        return path.read_text().strip()
    wif = str(Account.private_key_to_wif(secrets.token_bytes(32)))
    path.write_text(wif + "\n")
    path.chmod(0o600)
    return wif


def faucet_address(wif: str) -> str:
    return str(Account.from_wif(wif).address)


def ready(engine: Engine, faucet: str, amount: Decimal) -> int:
    """Starter deposits in the pool, not yet given to a tenant."""
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(UnmatchedDeposit)
                .where(
                    UnmatchedDeposit.from_address == faucet,
                    UnmatchedDeposit.amount == amount,
                    UnmatchedDeposit.credited_transaction_id.is_(None),
                )
            )
            or 0
        )


def fill(
    rpc: NeoRpc,
    engine: Engine,
    committee_wallet: Path,
    committee_password: str,
    wif: str,
    deposit_address: str,
    amount: Decimal,
) -> int:
    """Top the pool up to ``POOL_SIZE`` once fewer than ``LOW_WATER`` are left; how many
    deposits were made (0 when the pool was full enough).

    Raises:
        RuntimeError: the faucet's transaction did not make it into a block.
        TransferWouldFail, RpcError, RpcUnavailable: from the node.
    """
    faucet = faucet_address(wif)
    have = ready(engine, faucet, amount)
    if have >= LOW_WATER:
        return 0
    count = POOL_SIZE - have
    units = to_units(amount)
    needed = units * count
    # Fees are a fraction of a GAS; the committee's refill covers many pools and them.
    if rpc.gas_balance(faucet) < needed + 10**8:
        devnet.fund(
            rpc,
            committee_wallet,
            committee_password,
            faucet,
            units * POOL_SIZE * _FAUCET_REFILL_POOLS + 10**9,
        )
    tx_hash = _send_transfers(rpc, wif, deposit_address, units, count)
    app_log = rpc.wait_for_application_log(tx_hash, timeout=60)
    height = rpc.transaction_height(tx_hash)
    if app_log is None or height is None:
        raise RuntimeError(f"the faucet's transaction {tx_hash} was not in a block after 60 s")
    made = 0
    with Session(engine) as session:
        for transfer in gas_transfers(app_log):
            if transfer.to_address != deposit_address or transfer.from_address != faucet:
                continue
            ledger.credit_deposit(
                session,
                tx_hash=transfer.tx_hash,
                notification_index=transfer.notification_index,
                block_index=height,
                from_address=transfer.from_address,
                amount=from_units(transfer.amount),
            )
            made += 1
        session.commit()
    return made


def _send_transfers(rpc: NeoRpc, wif: str, to_address: str, units: int, count: int) -> str:
    """One transaction of ``count`` transfers of ``units`` from the faucet; its hash."""
    account = Account.from_wif(wif)
    sender = address_to_script_hash(str(account.address))
    builder = ScriptBuilder()  # type: ignore[no-untyped-call]
    target = address_to_script_hash(to_address)
    contract = UInt160.from_string(GAS_CONTRACT[2:])
    for _ in range(count):
        builder.emit_contract_call_with_args(contract, "transfer", [sender, target, units, None])
    try:
        tx = tested_transaction(
            rpc, account, builder.to_array(), valid_for_blocks=_VALID_FOR_BLOCKS
        )
    except TransferWouldFail as exc:
        raise RuntimeError(f"the faucet's transfers would fail: {exc.reason}") from None
    return rpc.send_raw_transaction(tx.to_array())


class Pool:
    """Keeps the pool filled while the dev stack runs (a thread, stopped with ``stop``)."""

    def __init__(
        self,
        settings: Settings,
        committee_wallet: Path,
        committee_password: str,
        wif: str,
        deposit_address: str,
        amount: Decimal,
    ) -> None:
        self._settings = settings
        self._args = (committee_wallet, committee_password, wif, deposit_address, amount)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="starter-pool", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        engine = make_engine(self._settings, pool_size=1)
        try:
            with NeoRpc(self._settings.neo_rpc_urls) as rpc:
                while not self._stop.wait(CHECK_SECONDS):
                    try:
                        made = fill(rpc, engine, *self._args)
                    except Exception:
                        log.exception("the starter pool could not be filled; trying again")
                        continue
                    if made:
                        log.info("starter pool: %d deposits made", made)
        finally:
            engine.dispose()
