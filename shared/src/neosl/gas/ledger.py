"""The balance rules of the gas bank: every change of a balance is a ``transactions`` row,
written in the same database transaction as the change.

This module is the rules, shared by every service; it is not the gasbank
(``services/gasbank``), which settles chain transactions (deposits, withdrawals) by
calling these functions.

Balance rules (``verify`` checks them for every account):

    balance = Σ deposit (confirmed) + Σ refund (confirmed)
              - Σ withdraw (pending, confirmed or failed)
              - Σ function and pricefeed charges (pending, confirmed or failed)

A withdrawal is debited when it is requested and stays debited whatever happens to it; if it
fails, a separate ``refund`` row credits the amount back. Charges and deposits are written
``confirmed``, except the fees of an on-chain action: they are held (a ``pending`` charge of
the most the transaction can cost) while it is in flight, and settled like a withdrawal:
``confirmed`` with a ``refund`` of what the chain did not take, or ``failed`` with a refund of
all of it. Nothing is ever updated in place except a withdrawal's or a held charge's status.

Who commits: the caller, always. Every function here writes through the session it is
given and neither commits nor rolls back, so a caller can put its own rows (an execution,
a trigger event, an idempotency record) in the same transaction and commit or roll back
the whole. A function that refuses (e.g. ``charge`` answering ``INSUFFICIENT_FUNDS``)
has written nothing, so the caller may go on with the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import case, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.errors import Conflict, InvalidInput, NotFound
from neosl.gas.money import InvalidAmount, check_amount, format_amount
from neosl.models import GasAccount, Transaction, UnmatchedDeposit
from neosl.models.gas import CHARGE_TYPES


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class ChargeStatus(StrEnum):
    CHARGED = "charged"
    DUPLICATE = "duplicate"  # this reference was charged before; nothing charged now
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NO_ACCOUNT = "no_account"  # the tenant has no default gas account


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    transaction_id: int | None = None
    balance: Decimal | None = None

    @property
    def ok(self) -> bool:
        """The reference is paid for (now or by an earlier call)."""
        return self.status in (ChargeStatus.CHARGED, ChargeStatus.DUPLICATE)


# One round trip, nothing written unless the charge happens: lock the default account,
# insert the charge row only if the balance covers it and the reference is new, and debit
# the account for the inserted row. The row lock makes the balance test and the debit one
# step; the unique index makes a reference pay once (a concurrent twin waits, then skips).
_CHARGE_SQL = text(
    """
    WITH acct AS (
        SELECT id, balance FROM gas_accounts
        WHERE user_id = :user_id AND is_default AND deleted_at IS NULL
        FOR UPDATE
    ), ins AS (
        INSERT INTO transactions (user_id, account_id, type, amount, status, reference)
        SELECT :user_id, acct.id, :type, :amount, :status, :reference FROM acct
        WHERE acct.balance >= :amount
        ON CONFLICT (user_id, type, reference)
            WHERE type IN ('function', 'pricefeed', 'refund') DO NOTHING
        RETURNING id, account_id
    ), upd AS (
        UPDATE gas_accounts g SET balance = g.balance - :amount
        FROM ins WHERE g.id = ins.account_id
        RETURNING g.balance
    )
    SELECT (SELECT id FROM acct) AS account_id,
           (SELECT id FROM ins) AS transaction_id,
           (SELECT balance FROM upd) AS balance
    """
)


_NO_ACCOUNT_RECHECKS = 3


def charge(
    session: Session, user_id: int, charge_type: str, amount: Decimal, reference: str
) -> ChargeResult:
    """Debit ``amount`` from the tenant's default account, once per ``reference``.

    A retried call with the same (tenant, type, reference) charges nothing and answers
    ``DUPLICATE``. The balance never goes below zero: ``INSUFFICIENT_FUNDS`` then. Only
    ``CHARGED`` has written anything; the caller commits.

    Raises:
        InvalidInput: unknown charge type, an amount that is not positive or has more than
            8 decimals, or a reference that is empty or longer than 200 characters.
    """
    return _charge(session, user_id, charge_type, amount, reference, "confirmed")


def hold(
    session: Session, user_id: int, charge_type: str, amount: Decimal, reference: str
) -> ChargeResult:
    """As ``charge``, but the row is ``pending``: the most something in flight can cost.

    Settle it with ``settle_hold`` (what it really cost) or ``release_hold`` (nothing).
    """
    return _charge(session, user_id, charge_type, amount, reference, "pending")


def _charge(
    session: Session,
    user_id: int,
    charge_type: str,
    amount: Decimal,
    reference: str,
    status: str,
) -> ChargeResult:
    if charge_type not in CHARGE_TYPES:
        raise InvalidInput(f"charge type must be one of {', '.join(CHARGE_TYPES)}")
    try:
        amount = check_amount(amount)
    except InvalidAmount as exc:
        raise InvalidInput(f"charge amount: {exc}") from None
    if not reference or len(reference) > 200:
        raise InvalidInput("charge reference must be 1-200 characters")
    params = {
        "user_id": user_id,
        "type": charge_type,
        "amount": amount,
        "reference": reference,
        "status": status,
    }
    row = session.execute(_CHARGE_SQL, params).one()
    for _ in range(_NO_ACCOUNT_RECHECKS):
        if row.account_id is not None:
            break
        # A "make default" committing while we waited for the old default's row lock hides
        # both rows from this statement (the old one is no longer the default, the new one
        # was not yet when it began); a new statement sees the new default.
        row = session.execute(_CHARGE_SQL, params).one()
    if row.account_id is None:
        return ChargeResult(ChargeStatus.NO_ACCOUNT)
    if row.transaction_id is not None:
        return ChargeResult(ChargeStatus.CHARGED, row.transaction_id, row.balance)
    existing = session.scalars(
        select(Transaction.id).where(
            Transaction.user_id == user_id,
            Transaction.type == charge_type,
            Transaction.reference == reference,
        )
    ).one_or_none()
    if existing is not None:
        return ChargeResult(ChargeStatus.DUPLICATE, existing)
    return ChargeResult(ChargeStatus.INSUFFICIENT_FUNDS)


def can_pay(session: Session, user_id: int, amount: Decimal) -> bool:
    """Whether the tenant's default account holds at least ``amount`` right now.

    Advisory only (another charge may land in between); ``charge`` is what guarantees.
    """
    balance = session.scalar(
        select(GasAccount.balance).where(
            GasAccount.user_id == user_id,
            GasAccount.is_default,
            GasAccount.deleted_at.is_(None),
        )
    )
    return balance is not None and balance >= amount


def withdrawn_today(session: Session, user_id: int, now: dt.datetime | None = None) -> Decimal:
    """GAS the tenant has withdrawn (or is withdrawing) since 00:00 UTC, failed ones excluded."""
    now = now or dt.datetime.now(dt.UTC)
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    total = session.scalar(
        select(func.coalesce(func.sum(Transaction.amount), 0)).where(
            Transaction.user_id == user_id,
            Transaction.type == "withdraw",
            Transaction.status != "failed",
            Transaction.created_at >= midnight,
        )
    )
    return Decimal(total or 0)


def debit_withdrawal(session: Session, account: GasAccount, amount: Decimal) -> Transaction:
    """Debit a withdrawal from ``account`` (locked by the caller) as ``pending``.

    The caller commits, then hands the row's id to the gasbank.

    Raises:
        InsufficientFunds: the balance does not cover ``amount``.
    """
    if account.balance < amount:
        raise InsufficientFunds(
            f"balance {format_amount(account.balance)} GAS does not cover {format_amount(amount)}",
            {"amount": ["Exceeds the account balance."]},
        )
    account.balance -= amount
    tx = Transaction(
        user_id=account.user_id,
        account_id=account.id,
        type="withdraw",
        amount=amount,
        status="pending",
    )
    session.add(tx)
    session.flush()
    return tx


def fail_withdrawal(session: Session, transaction_id: int, reason: str) -> bool:
    """Mark a pending withdrawal failed and refund it; False if it was no longer pending.

    Safe to call twice: only the first call refunds. The caller commits.
    """
    tx = session.get(Transaction, transaction_id, with_for_update=True)
    if tx is None or tx.type != "withdraw" or tx.status != "pending":
        return False
    account = session.get_one(GasAccount, tx.account_id, with_for_update=True)
    tx.status = "failed"
    tx.failure_reason = reason[:1000]
    account.balance += tx.amount
    session.add(
        Transaction(
            user_id=tx.user_id,
            account_id=tx.account_id,
            type="refund",
            amount=tx.amount,
            status="confirmed",
            reference=f"withdraw:{tx.id}",
        )
    )
    session.flush()
    return True


def confirm_withdrawal(session: Session, transaction_id: int, block_index: int | None) -> bool:
    """Mark a pending withdrawal confirmed; False if it was no longer pending.

    The caller commits.
    """
    tx = session.get(Transaction, transaction_id, with_for_update=True)
    if tx is None or tx.type != "withdraw" or tx.status != "pending":
        return False
    tx.status = "confirmed"
    tx.block_index = block_index
    session.flush()
    return True


# A held charge ends in one statement: the hold confirmed at what it cost (or failed, for a
# release), and the rest refunded to its account with a refund row. The hold's row is
# locked first, then its account's: the order of every writer of both.
_END_HOLD_SQL = text(
    """
    WITH tx AS (
        UPDATE transactions t
        SET status = CAST(:ended_as AS varchar),
            block_index = CASE WHEN CAST(:ended_as AS varchar) = 'confirmed'
                               THEN CAST(:block_index AS bigint) ELSE t.block_index END,
            failure_reason = CASE WHEN CAST(:ended_as AS varchar) = 'failed'
                                  THEN CAST(:reason AS text) ELSE t.failure_reason END
        WHERE t.id = :transaction_id AND t.status = 'pending' AND t.type = ANY(:types)
        RETURNING t.id, t.user_id, t.account_id, t.type, t.reference, t.amount,
                  LEAST(GREATEST(CAST(:cost AS numeric), 0), t.amount) AS charged
    ), back AS (
        UPDATE gas_accounts a SET balance = a.balance + (tx.amount - tx.charged)
        FROM tx WHERE a.id = tx.account_id AND tx.amount > tx.charged
        RETURNING a.id
    ), refund AS (
        INSERT INTO transactions (user_id, account_id, type, amount, status, reference)
        SELECT user_id, account_id, 'refund', amount - charged, 'confirmed',
               COALESCE(reference, type || ':' || id)
        FROM tx WHERE amount > charged
        RETURNING id
    )
    SELECT charged, (SELECT count(*) FROM back) AS refunded FROM tx
    """
)


def _end_hold(
    session: Session,
    transaction_id: int,
    ended_as: str,
    cost: Decimal,
    block_index: int | None = None,
    reason: str | None = None,
) -> Decimal | None:
    row = session.execute(
        _END_HOLD_SQL,
        {
            "transaction_id": transaction_id,
            "ended_as": ended_as,
            "cost": cost,
            "block_index": block_index,
            "reason": None if reason is None else reason[:1000],
            "types": list(CHARGE_TYPES),
        },
    ).one_or_none()
    if row is None:
        return None
    # The hold and account rows this session loaded before are stale now.
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Transaction | GasAccount):
            session.expire(loaded)
    charged: Decimal = row.charged
    return charged


def settle_hold(
    session: Session, transaction_id: int, cost: Decimal, block_index: int | None
) -> Decimal | None:
    """Confirm a held charge at ``cost`` (at most the hold): the rest is refunded.

    Returns what was charged, or None if the hold was no longer pending (settled before:
    safe to call twice). A cost above the hold is capped at the hold. One statement; the
    caller commits.
    """
    return _end_hold(session, transaction_id, "confirmed", cost, block_index=block_index)


def release_hold(session: Session, transaction_id: int, reason: str) -> bool:
    """Fail a held charge and refund all of it; False if it was no longer pending.

    One statement; the caller commits.
    """
    return _end_hold(session, transaction_id, "failed", Decimal(0), reason=reason) is not None


class DepositOutcome(StrEnum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"


def credit_deposit(
    session: Session,
    *,
    tx_hash: str,
    notification_index: int,
    block_index: int,
    from_address: str | None,
    amount: Decimal,
) -> DepositOutcome:
    """Credit a GAS transfer to the deposit address to the proven account of its sender.

    Idempotent by (tx_hash, notification_index). A transfer whose sender no tenant has
    proven to own (unregistered, or registered before proofs and not proven since) is
    recorded in ``unmatched_deposits`` with the reason, for operators to credit by hand
    (``credit_unmatched``). The caller commits.
    """
    account = None
    reason = "no_sender"
    if from_address is not None:
        account = session.scalars(
            select(GasAccount)
            .where(
                GasAccount.address == from_address,
                GasAccount.deleted_at.is_(None),
                GasAccount.verified_at.is_not(None),
            )
            .with_for_update()
        ).one_or_none()
        if account is None:
            unproven = session.scalar(
                select(
                    exists().where(
                        GasAccount.address == from_address, GasAccount.deleted_at.is_(None)
                    )
                )
            )
            reason = "unverified" if unproven else "unregistered"
    if account is None:
        session.execute(
            insert(UnmatchedDeposit)
            .values(
                tx_hash=tx_hash,
                notification_index=notification_index,
                block_index=block_index,
                from_address=from_address,
                amount=amount,
                reason=reason,
            )
            .on_conflict_do_nothing(index_elements=["tx_hash", "notification_index"])
        )
        return DepositOutcome.UNMATCHED
    return (
        DepositOutcome.CREDITED
        if _insert_deposit(session, account, tx_hash, notification_index, block_index, amount)
        is not None
        else DepositOutcome.DUPLICATE
    )


def _insert_deposit(
    session: Session,
    account: GasAccount,
    tx_hash: str,
    notification_index: int,
    block_index: int,
    amount: Decimal,
) -> int | None:
    """Write the deposit row and credit ``account`` (locked); None if it was credited before."""
    inserted = session.scalar(
        insert(Transaction)
        .values(
            user_id=account.user_id,
            account_id=account.id,
            type="deposit",
            amount=amount,
            tx_hash=tx_hash,
            notification_index=notification_index,
            block_index=block_index,
            status="confirmed",
        )
        .on_conflict_do_nothing(
            index_elements=["tx_hash", "notification_index"],
            index_where=text("type = 'deposit'"),
        )
        .returning(Transaction.id)
    )
    if inserted is not None:
        account.balance += amount
    return inserted


def credit_unmatched(session: Session, unmatched_id: int, account_id: int) -> int:
    """An operator credits a deposit that could not be matched to ``account_id``.

    The deposit row carries the chain transaction and notification, so the same transfer
    can never be credited twice (neither by this nor by the follower). The caller commits.
    Returns the deposit's transaction id.

    Raises:
        NotFound: no such unmatched deposit, or no such (live) account.
        Conflict: this deposit was credited already.
    """
    unmatched = session.get(UnmatchedDeposit, unmatched_id, with_for_update=True)
    if unmatched is None:
        raise NotFound(f"unmatched deposit {unmatched_id} not found")
    account = session.get(GasAccount, account_id, with_for_update=True)
    if account is None or account.deleted_at is not None:
        raise NotFound(f"gas account {account_id} not found")
    if unmatched.credited_transaction_id is not None:
        raise Conflict(
            f"unmatched deposit {unmatched_id} was credited already "
            f"(transaction {unmatched.credited_transaction_id})"
        )
    transaction_id = _insert_deposit(
        session,
        account,
        unmatched.tx_hash,
        unmatched.notification_index,
        unmatched.block_index,
        unmatched.amount,
    )
    if transaction_id is None:
        raise Conflict(f"the transfer of unmatched deposit {unmatched_id} was credited already")
    unmatched.credited_transaction_id = transaction_id
    session.flush()
    return transaction_id


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    balance: Decimal
    expected: Decimal


def verify(session: Session) -> list[Mismatch]:
    """Every account whose balance differs from the sum of its transactions (see module doc)."""
    t = Transaction
    signed = case(
        (t.type.in_(("deposit", "refund")) & (t.status == "confirmed"), t.amount),
        (t.type == "withdraw", -t.amount),
        (t.type.in_(CHARGE_TYPES), -t.amount),
        else_=0,
    )
    sums = (
        select(t.account_id, func.sum(signed).label("expected")).group_by(t.account_id).subquery()
    )
    rows = session.execute(
        select(GasAccount.id, GasAccount.balance, func.coalesce(sums.c.expected, 0))
        .outerjoin(sums, sums.c.account_id == GasAccount.id)
        .order_by(GasAccount.id)
    ).all()
    return [Mismatch(a, b, Decimal(e)) for a, b, e in rows if b != e]
