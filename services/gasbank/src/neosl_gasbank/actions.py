"""Tenants' on-chain actions: test-invoke, hold the fees, sign once, send, settle.

An action (``neo_actions``) is a contract call a tenant asked for, from a function's
``neo.invoke`` or ``POST /v1/neo/actions``. Relaying it:

1. ``relay``: under the action's row lock, first check that the tenant's default account
   covers the most the hold can be (``NSL_ACTION_MAX_FEE`` plus the service fee): if not,
   the action fails with "insufficient funds" before any RPC call. Then build the
   transaction (``neosl_gasbank.invocations``:
   the hot wallet pays, the tenant's signer witnesses; a price round published to the
   service's PriceFeed contract is witnessed by the hot wallet as its publisher). A test
   invocation that does not HALT fails the action with the VM's exception: nothing is sent
   or charged. Fees over
   ``NSL_ACTION_MAX_FEE`` fail it too. Otherwise the most it can cost (system fee + network
   fee + the service fee) is held from the tenant's balance (``ledger.hold``, type
   ``function``, or ``pricefeed`` for a price round's publication, reference
   ``action:<id>``); without the funds the action fails with
   "insufficient funds" and nothing is sent. The signed bytes go on the held charge's row,
   committed before they are sent; from there the relay machinery (``relay``) takes over.
2. ``reconcile``: settles pending actions from the chain. HALT → ``confirmed``, FAULT →
   ``failed`` with the exception: both cost GAS, so both are charged what the chain took
   from the hot wallet (the transaction's system fee, burned in full whatever the VM
   consumed, plus its network fee) plus the service fee: the hold, exactly (a hold larger
   than the cost would be refunded the difference). Not included by its
   ``valid_until_block`` → ``failed``, the hold is released: nothing is charged. Queued
   actions whose message was lost are relayed again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from decimal import Decimal
from typing import Any, Literal

from neo3.wallet.account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import ConfigError, Settings
from neosl.gas import ledger
from neosl.gas.money import from_units
from neosl.models import NeoAction, Transaction
from neosl.models.gas import CHARGE_TYPES
from neosl.neo import params
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import SignedTransfer, application_execution
from neosl.onchain import actions as onchain
from neosl.onchain import relaybox, signers
from neosl.onchain.relaybox import RelayKey, SignerKeyUnreadable
from neosl_gasbank import relay
from neosl_gasbank.hot_wallet import HotWallet
from neosl_gasbank.invocations import InvocationWouldFail, build_invocation, call_script

log = logging.getLogger(__name__)


def charge_reference(action_id: int) -> str:
    return f"action:{action_id}"


def relay_action(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    wallet: HotWallet,
    action_id: int,
) -> str:
    """Sign (once) and broadcast a queued action; returns what happened.

    Raises:
        ConfigError: the relay's key is not configured.
        RpcUnavailable: no RPC endpoint answered (the action stays queued; retried later).
    """
    key = relaybox.relay_key(settings)
    if key is None:
        raise ConfigError("NSL_RELAY_KEY is not set (the gasbank signs actions with it)")
    signed: SignedTransfer | None = None
    with sessions() as session:
        action = session.get(NeoAction, action_id, with_for_update=True)
        if action is None:
            return "missing"
        if action.status != "queued":
            transaction_id = action.transaction_id
            if action.status != "pending" or transaction_id is None:
                return "settled"
        else:
            outcome = _sign(session, settings, key, rpc, wallet, action)
            if isinstance(outcome, str):
                return outcome
            signed = outcome
            transaction_id = action.transaction_id
            session.commit()
    assert transaction_id is not None
    # Just signed and committed: the bytes need not be read back to be sent.
    return relay.broadcast(sessions, rpc, transaction_id, f"action {action_id}", signed=signed)


def _sign(
    session: Session,
    settings: Settings,
    key: RelayKey,
    rpc: NeoRpc,
    wallet: HotWallet,
    action: NeoAction,
) -> SignedTransfer | str:
    """Build, price, hold and store; the caller commits when this answers the signed
    transaction (else it answers what happened, committed)."""
    # Before any RPC call: a tenant who cannot cover the most the hold can be costs the
    # shared node nothing (the hold below still decides).
    if not ledger.can_pay(session, action.user_id, onchain.most_held(settings, action.charge_type)):
        return _fail_now(
            session,
            action,
            "insufficient funds: the default gas account does not cover the most an action "
            f"may hold, {onchain.describe_most_held(settings, action.charge_type)}; "
            "nothing was sent",
        )
    try:
        account = None
        if action.as_publisher:
            # The service's own publication: the hot wallet alone signs, and only a call of
            # the configured PriceFeed contract's update.
            if (action.contract, action.method) != (settings.pricefeed_contract, "update"):
                return _fail_now(
                    session, action, "only the PriceFeed contract's update is published as such"
                )
        else:
            signer = signers.get_or_create(session, action.user_id, key.public)
            account = signers.open_signer(signer, key)
        script = call_script(
            action.contract, action.method, params.to_python(params.parse_args(action.args))
        )
        signed = build_invocation(
            rpc,
            Account.from_wif(wallet.wif),
            account,
            script,
            valid_for_blocks=settings.action_valid_blocks,
        )
    except InvocationWouldFail as exc:
        return _fail_now(session, action, exc.reason)
    except params.ParamError as exc:
        return _fail_now(session, action, f"the arguments cannot be mapped: {exc}")
    except SignerKeyUnreadable as exc:
        log.error("action %s: %s", action.id, exc)
        return _fail_now(session, action, "the tenant's signer key cannot be used")
    system_fee, network_fee = from_units(signed.system_fee), from_units(signed.network_fee)
    fees = system_fee + network_fee
    if fees > settings.action_max_fee:
        return _fail_now(
            session,
            action,
            f"the transaction would cost {fees} GAS in fees, more than the cap of "
            f"{settings.action_max_fee} GAS per action",
        )
    service_fee = onchain.service_fee(settings, action.charge_type)
    held = ledger.hold(
        session, action.user_id, action.charge_type, fees + service_fee, charge_reference(action.id)
    )
    if held.status in (ledger.ChargeStatus.INSUFFICIENT_FUNDS, ledger.ChargeStatus.NO_ACCOUNT):
        return _fail_now(
            session,
            action,
            f"insufficient funds: the action needs {fees + service_fee} GAS "
            f"({fees} in fees, {service_fee} service fee)",
        )
    assert held.transaction_id is not None
    tx = session.get_one(Transaction, held.transaction_id)
    relay.store_signed(tx, signed.raw, signed.tx_hash, signed.valid_until_block)
    action.status = "pending"
    action.transaction_id = tx.id
    action.tx_hash = signed.tx_hash
    action.system_fee = system_fee
    action.network_fee = network_fee
    action.service_fee = service_fee
    return signed


def _fail_now(session: Session, action: NeoAction, reason: str) -> str:
    """Nothing was signed: the action fails, nothing is charged. Commits."""
    action.status = "failed"
    action.failure_reason = reason[:1000]
    action.settled_at = dt.datetime.now(dt.UTC)
    session.commit()
    return "failed"


# pg_try_advisory_lock key of the actions' settlement pass: one pass at a time, whatever
# the number of workers (a second one would only repeat the first one's RPC calls).
_RECONCILE_LOCK = 0x6E736C_0A_C7


def reconcile(
    sessions: sessionmaker[Session], rpc: NeoRpc, settings: Settings, wallet: HotWallet
) -> Counter[str]:
    """Settle every pending action from what the chain says; relay queued ones again.

    A queued action is relayed here only once it has waited ``action_requeue_seconds``: its
    own job normally does that first. While another pass runs, this one does nothing
    (``busy``).

    Raises:
        RpcUnavailable: as ``relay.settle``.
    """
    with sessions() as session:
        connection = session.connection()
        if not connection.execute(select(func.pg_try_advisory_lock(_RECONCILE_LOCK))).scalar():
            return Counter(busy=1)
        try:
            return _reconcile(sessions, rpc, settings, wallet)
        finally:
            connection.execute(select(func.pg_advisory_unlock(_RECONCILE_LOCK)))
            session.commit()


def _reconcile(
    sessions: sessionmaker[Session], rpc: NeoRpc, settings: Settings, wallet: HotWallet
) -> Counter[str]:
    counts: Counter[str] = Counter()
    lost_before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.action_requeue_seconds)
    with sessions() as session:
        queued = session.scalars(
            select(NeoAction.id)
            .where(NeoAction.status == "queued", NeoAction.created_at < lost_before)
            .order_by(NeoAction.id)
            .limit(1000)
        ).all()
        rows = session.execute(
            select(
                Transaction.id,
                Transaction.raw_tx.is_not(None).label("signed"),
                Transaction.sent_at.is_not(None).label("sent"),
                Transaction.failure_reason,
            )
            .join(NeoAction, NeoAction.transaction_id == Transaction.id)
            .where(Transaction.type.in_(CHARGE_TYPES), Transaction.status == "pending")
            .order_by(Transaction.id)
        ).all()
    for action_id in queued:
        counts[f"relay_{relay_action(sessions, rpc, settings, wallet, action_id)}"] += 1
    counts.update(
        relay.settle(
            sessions,
            rpc,
            settings,
            [relay.Pending(r.id, r.signed, r.sent, r.failure_reason) for r in rows],
            what="action",
            send=lambda tx_id: relay.broadcast(sessions, rpc, tx_id, f"action charge {tx_id}"),
            judge=_judge,
            apply=lambda session, tx_id, verdict, reason: _apply(
                session, settings, tx_id, verdict, reason
            ),
        )
    )
    return counts


def _judge(app_log: dict[str, Any]) -> Literal["confirmed", "failed"] | None:
    run = application_execution(app_log)
    if run is None:
        return None
    state = run.get("vmstate")
    if state == "HALT":
        return "confirmed"
    if state == "FAULT":
        return "failed"
    return None


def _apply(
    session: Session,
    settings: Settings,
    transaction_id: int,
    verdict: relay.Verdict,
    reason: str | None,
) -> None:
    action = session.scalars(
        select(NeoAction).where(NeoAction.transaction_id == transaction_id).with_for_update()
    ).one()
    now = dt.datetime.now(dt.UTC)
    if verdict.outcome == "expired":
        if ledger.release_hold(session, transaction_id, reason or "not included in a block"):
            action.status = "failed"
            action.failure_reason = (reason or "not included in a block")[:1000]
            action.fee_charged = Decimal(0)
            action.settled_at = now
        return
    run = application_execution(verdict.application_log or {}) or {}
    gas_consumed = from_units(int(run.get("gasconsumed") or 0))
    # What the chain took from the hot wallet: the transaction's whole system fee (burned
    # whatever the VM consumed, also when it stopped at that limit) and its network fee.
    cost = (
        (action.system_fee or Decimal(0))
        + (action.network_fee or Decimal(0))
        + (action.service_fee or Decimal(0))
    )
    charged = ledger.settle_hold(session, transaction_id, cost, verdict.block_index)
    if charged is None:
        return
    action.status = verdict.outcome
    action.vm_state = str(run.get("vmstate") or "")[:10] or None
    action.block_index = verdict.block_index
    action.gas_consumed = gas_consumed
    action.fee_charged = charged
    action.settled_at = now
    if verdict.outcome == "failed":
        action.failure_reason = (
            f"the transaction FAULTed on chain: {run.get('exception') or 'no reason given'}"
        )[:1000]
