"""Tenants' on-chain actions: test-invoke, hold the fees, sign once, send, settle.

An action (``neo_actions``) is a contract call a tenant asked for, from a function's
``neo.invoke`` or ``POST /v1/neo/actions``. Relaying it:

1. ``relay_action``: a job relays its own action and the oldest other queued ones no other
   worker holds, up to ``NSL_RELAY_BATCH``, under their row locks in one database
   transaction (node calls side by side, one commit, sent together). For each, first check
   that the tenant's default account covers the most its holds in the batch can be
   (``NSL_ACTION_MAX_FEE`` plus the service fee, per action): if not,
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
from neosl.neo.transfers import SignedTransfer, application_execution
from neosl.onchain import actions as onchain
from neosl.onchain import relaybox, signers
from neosl.onchain.relaybox import RelayKey, SignerKeyUnreadable
from neosl_gasbank import relay
from neosl_gasbank.hot_wallet import HotWallet
from neosl_gasbank.invocations import InvocationWouldFail, build_invocation, call_script

log = logging.getLogger(__name__)

# Actions of one batch whose node calls (test invocation, network fee) run at once.
_BUILDING_THREADS = 8


def charge_reference(action_id: int) -> str:
    return f"action:{action_id}"


def relay_action(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    wallet: HotWallet,
    action_id: int,
) -> str:
    """Sign (once) and broadcast the queued action ``action_id`` and, in the same batch, the
    oldest other queued actions no other worker is relaying (``relay_batch`` in all): one
    transaction signs and holds them all, their node calls run side by side, and they are
    sent together. A burst of actions (one job each) is so relayed in a few batches, not
    one at a time.

    What happened to ``action_id``: "sent", "failed", "expired", "rejected"; "busy" (another
    worker is relaying it); "settled" (nothing to send); "missing".

    Raises:
        ConfigError: the relay's key is not configured.
        RpcUnavailable: no RPC endpoint answered for some action (each stays queued or
            pending, and is relayed by the retry or the settlement pass; nothing is lost).
    """
    key = relaybox.relay_key(settings)
    if key is None:
        raise ConfigError("NSL_RELAY_KEY is not set (the gasbank signs actions with it)")
    with sessions() as session:
        batch = session.scalars(
            select(NeoAction)
            .where(NeoAction.status == "queued")
            # Its own action first, if no other worker holds it.
            .order_by((NeoAction.id == action_id).desc(), NeoAction.id)
            .limit(settings.relay_batch)
            .with_for_update(skip_locked=True)
        ).all()
        outcomes, stalled = _sign_batch(session, settings, key, rpc, wallet, batch)
        session.commit()
    # Just signed and committed: the bytes need not be read back to be sent.
    to_send: dict[int, tuple[bytes, str]] = {}
    own: Signed = None
    own_transaction: int | None = None
    for action, outcome in zip(batch, outcomes, strict=True):
        if action.id == action_id:
            own, own_transaction = outcome, action.transaction_id
        if isinstance(outcome, SignedTransfer) and action.transaction_id is not None:
            to_send[action.transaction_id] = (outcome.raw, outcome.tx_hash)
    sent = relay.broadcast_many(sessions, rpc, to_send, "action")
    if stalled:
        raise stalled[0]
    if isinstance(own, SignedTransfer):
        assert own_transaction is not None
        return sent[own_transaction]
    if isinstance(own, str):
        return own
    return _not_in_batch(sessions, rpc, action_id)


def _not_in_batch(sessions: sessionmaker[Session], rpc: NeoRpc, action_id: int) -> str:
    """What became of an action its own job found no longer queued, or held by another
    worker; one signed but not known to be sent is sent (again: the same bytes)."""
    with sessions() as session:
        row = session.execute(
            select(NeoAction.status, NeoAction.transaction_id, Transaction.sent_at)
            .outerjoin(Transaction, Transaction.id == NeoAction.transaction_id)
            .where(NeoAction.id == action_id)
        ).one_or_none()
    if row is None:
        return "missing"
    if row.status == "queued":
        return "busy"
    if row.status != "pending" or row.transaction_id is None:
        return "settled"
    if row.sent_at is not None:
        return "sent"
    return relay.broadcast(sessions, rpc, row.transaction_id, f"action {action_id}")


# What ``_sign_batch`` answers for each action: signed (held and stored on the row; the
# caller commits, then sends), what happened instead ("failed"), or None: left queued (the
# node could not be asked).
Signed = SignedTransfer | str | None


def _sign_batch(
    session: Session,
    settings: Settings,
    key: RelayKey,
    rpc: NeoRpc,
    wallet: HotWallet,
    batch: Sequence[NeoAction],
) -> tuple[list[Signed], list[RpcUnavailable]]:
    """Check, build, price, hold and store each action of ``batch`` (locked, queued); the
    caller commits. Also answers why actions were left queued, if the node was unreachable."""
    outcomes: list[Signed] = [None] * len(batch)
    calls: dict[int, tuple[Account | None, bytes]] = {}
    admitted: Counter[int] = Counter()
    signers_of: dict[int, Account | str] = {}
    for i, action in enumerate(batch):
        prepared = _prepare(session, settings, key, action, admitted, signers_of)
        if isinstance(prepared, str):
            outcomes[i] = _fail(action, prepared)
        else:
            calls[i] = prepared
    payer = Account.from_wif(wallet.wif)

    def build(i: int) -> SignedTransfer | Exception:
        signer, script = calls[i]
        try:
            return build_invocation(
                rpc, payer, signer, script, valid_for_blocks=settings.action_valid_blocks
            )
        except (InvocationWouldFail, RpcError, RpcUnavailable) as exc:
            return exc

    order = list(calls)
    if len(order) > 1:
        # The node's answers are waited for side by side, not one after another.
        with ThreadPoolExecutor(max_workers=min(_BUILDING_THREADS, len(order))) as threads:
            built = list(threads.map(build, order))
    else:
        built = [build(i) for i in order]
    stalled: list[RpcUnavailable] = []
    for i, result in zip(order, built, strict=True):
        action = batch[i]
        if isinstance(result, InvocationWouldFail):
            outcomes[i] = _fail(action, result.reason)
        elif isinstance(result, RpcUnavailable):
            stalled.append(result)
        elif isinstance(result, RpcError):
            # Left queued: the settlement pass relays it again later.
            log.warning("action %s: the node answered an error: %s", action.id, result)
        elif isinstance(result, SignedTransfer):
            outcomes[i] = _hold_and_store(session, settings, action, result)
    return outcomes, stalled


def _prepare(
    session: Session,
    settings: Settings,
    key: RelayKey,
    action: NeoAction,
    admitted: Counter[int],
    signers_of: dict[int, Account | str],
) -> tuple[Account | None, bytes] | str:
    """The action's witness and script, or why it fails before any node call."""
    # Before any RPC call: a tenant who cannot cover the most the holds of its actions in
    # this batch can be costs the shared node nothing (the hold still decides).
    most = onchain.most_held(settings, action.charge_type)
    if not ledger.can_pay(session, action.user_id, most * (admitted[action.user_id] + 1)):
        return (
            "insufficient funds: the default gas account does not cover the most an action "
            f"may hold, {onchain.describe_most_held(settings, action.charge_type)}; "
            "nothing was sent"
        )
    account: Account | None = None
    if action.as_publisher:
        # The service's own publication: the hot wallet alone signs, and only a call of
        # the configured PriceFeed contract's update.
        if (action.contract, action.method) != (settings.pricefeed_contract, "update"):
            return "only the PriceFeed contract's update is published as such"
    else:
        if action.user_id not in signers_of:
            try:
                signer = signers.get_or_create(session, action.user_id, key.public)
                signers_of[action.user_id] = signers.open_signer(signer, key)
            except SignerKeyUnreadable as exc:
                log.error("action %s: %s", action.id, exc)
                signers_of[action.user_id] = "the tenant's signer key cannot be used"
        opened = signers_of[action.user_id]
        if isinstance(opened, str):
            return opened
        account = opened
    try:
        script = call_script(
            action.contract, action.method, params.to_python(params.parse_args(action.args))
        )
    except params.ParamError as exc:
        return f"the arguments cannot be mapped: {exc}"
    admitted[action.user_id] += 1
    return account, script


def _hold_and_store(
    session: Session, settings: Settings, action: NeoAction, signed: SignedTransfer
) -> SignedTransfer | str:
    """Hold the most the signed transaction can cost and store it on the held row."""
    system_fee, network_fee = from_units(signed.system_fee), from_units(signed.network_fee)
    fees = system_fee + network_fee
    if fees > settings.action_max_fee:
        return _fail(
            action,
            f"the transaction would cost {fees} GAS in fees, more than the cap of "
            f"{settings.action_max_fee} GAS per action",
        )
    service_fee = onchain.service_fee(settings, action.charge_type)
    held = ledger.hold(
        session, action.user_id, action.charge_type, fees + service_fee, charge_reference(action.id)
    )
    if held.status in (ledger.ChargeStatus.INSUFFICIENT_FUNDS, ledger.ChargeStatus.NO_ACCOUNT):
        return _fail(
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


def _fail(action: NeoAction, reason: str) -> str:
    """Nothing was signed: the action fails, nothing is charged (the caller commits)."""
    action.status = "failed"
    action.failure_reason = reason[:1000]
    action.settled_at = dt.datetime.now(dt.UTC)
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
    for action_id in queued:
        counts[f"relay_{relay_action(sessions, rpc, settings, wallet, action_id)}"] += 1

    def pending() -> list[relay.Pending]:
        with sessions() as session:
            return [
                relay.Pending(r.id, r.signed, r.sent, r.failure_reason)
                for r in session.execute(
                    select(
                        Transaction.id,
                        Transaction.raw_tx.is_not(None).label("signed"),
                        Transaction.sent_at.is_not(None).label("sent"),
                        Transaction.failure_reason,
                    )
                    .join(NeoAction, NeoAction.transaction_id == Transaction.id)
                    .where(Transaction.type.in_(CHARGE_TYPES), Transaction.status == "pending")
                    .order_by(Transaction.id)
                )
            ]

    counts.update(
        relay.settle(
            sessions,
            rpc,
            settings,
            pending,
            what="action",
            valid_blocks=settings.action_valid_blocks,
            send=lambda tx_id: relay.broadcast(sessions, rpc, tx_id, f"action charge {tx_id}"),
            judge=lambda _tx_id, app_log: _judge(app_log),
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
