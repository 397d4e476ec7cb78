"""The GAS ledger: every change of a balance is a ``transactions`` row, written together.

Balance rules (``verify`` checks them for every account):

    balance = Σ deposit (confirmed) + Σ refund (confirmed)
              - Σ withdraw (pending, confirmed or failed)
              - Σ function and pricefeed charges (confirmed)

A withdrawal is debited when it is requested and stays debited whatever happens to it; if it
fails, a separate ``refund`` row credits the amount back. Charges and deposits are written
``confirmed``. Nothing is ever updated in place except a withdrawal's status.

Functions here take a session and own the commit, except where the docstring says the
caller commits (so a caller can add its own rows to the same transaction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.errors import Conflict, InvalidInput
from neosl.models import GasAccount, Transaction, UnmatchedDeposit
from neosl.models.gas import CHARGE_TYPES
from neosl.money import format_amount


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


# One round trip: insert the charge row (skipped if the reference was charged before) and
# debit the default account only if the row was inserted and the balance covers it.
_CHARGE_SQL = text(
    """
    WITH acct AS (
        SELECT id FROM gas_accounts
        WHERE user_id = :user_id AND is_default AND deleted_at IS NULL
    ), ins AS (
        INSERT INTO transactions (user_id, account_id, type, amount, status, reference)
        SELECT :user_id, acct.id, :type, :amount, 'confirmed', :reference FROM acct
        ON CONFLICT (user_id, type, reference)
            WHERE type IN ('function', 'pricefeed', 'refund') DO NOTHING
        RETURNING id, account_id
    ), upd AS (
        UPDATE gas_accounts g SET balance = g.balance - :amount
        FROM ins WHERE g.id = ins.account_id AND g.balance >= :amount
        RETURNING g.balance
    )
    SELECT (SELECT id FROM acct) AS account_id,
           (SELECT id FROM ins) AS transaction_id,
           (SELECT balance FROM upd) AS balance
    """
)


def charge(
    session: Session, user_id: int, charge_type: str, amount: Decimal, reference: str
) -> ChargeResult:
    """Debit ``amount`` from the tenant's default account, once per ``reference``.

    A retried call with the same (tenant, type, reference) charges nothing and answers
    ``DUPLICATE``. The balance never goes below zero: ``INSUFFICIENT_FUNDS`` then, with
    nothing written.

    Raises:
        InvalidInput: unknown charge type, non-positive amount or empty reference.
    """
    if charge_type not in CHARGE_TYPES:
        raise InvalidInput(f"charge type must be one of {', '.join(CHARGE_TYPES)}")
    if amount <= 0:
        raise InvalidInput("charge amount must be positive")
    if not reference or len(reference) > 200:
        raise InvalidInput("charge reference must be 1-200 characters")
    row = session.execute(
        _CHARGE_SQL,
        {"user_id": user_id, "type": charge_type, "amount": amount, "reference": reference},
    ).one()
    if row.account_id is None:
        session.rollback()
        return ChargeResult(ChargeStatus.NO_ACCOUNT)
    if row.transaction_id is None:
        session.rollback()
        existing = session.scalars(
            select(Transaction.id).where(
                Transaction.user_id == user_id,
                Transaction.type == charge_type,
                Transaction.reference == reference,
            )
        ).one()
        return ChargeResult(ChargeStatus.DUPLICATE, existing)
    if row.balance is None:
        session.rollback()  # undoes the inserted row
        return ChargeResult(ChargeStatus.INSUFFICIENT_FUNDS)
    session.commit()
    return ChargeResult(ChargeStatus.CHARGED, row.transaction_id, row.balance)


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

    The caller commits, then hands the row's id to the gas-ledger service.

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

    Safe to call twice: only the first call refunds.
    """
    tx = session.get(Transaction, transaction_id, with_for_update=True)
    if tx is None or tx.type != "withdraw" or tx.status != "pending":
        session.rollback()
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
    session.commit()
    return True


def confirm_withdrawal(session: Session, transaction_id: int, block_index: int | None) -> bool:
    """Mark a pending withdrawal confirmed; False if it was no longer pending."""
    tx = session.get(Transaction, transaction_id, with_for_update=True)
    if tx is None or tx.type != "withdraw" or tx.status != "pending":
        session.rollback()
        return False
    tx.status = "confirmed"
    tx.block_index = block_index
    session.commit()
    return True


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
    """Credit a GAS transfer to the deposit address to the account registered for its sender.

    Idempotent by (tx_hash, notification_index). A sender no tenant registered is recorded
    in ``unmatched_deposits`` for operators. The caller commits.
    """
    account = None
    if from_address is not None:
        account = session.scalars(
            select(GasAccount)
            .where(GasAccount.address == from_address, GasAccount.deleted_at.is_(None))
            .with_for_update()
        ).one_or_none()
    if account is None:
        session.execute(
            insert(UnmatchedDeposit)
            .values(
                tx_hash=tx_hash,
                notification_index=notification_index,
                block_index=block_index,
                from_address=from_address,
                amount=amount,
            )
            .on_conflict_do_nothing(index_elements=["tx_hash", "notification_index"])
        )
        return DepositOutcome.UNMATCHED
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
    if inserted is None:
        return DepositOutcome.DUPLICATE
    account.balance += amount
    return DepositOutcome.CREDITED


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
        (t.type.in_(CHARGE_TYPES) & (t.status == "confirmed"), -t.amount),
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
