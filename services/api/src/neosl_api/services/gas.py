"""Gas bank use cases of the API: accounts, the deposit address, withdrawals, history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neosl import jobs, ledger
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.errors import Conflict, InvalidInput, NotFound, ServiceError
from neosl.models import GasAccount, Transaction
from neosl.money import format_amount
from neosl.neo.addresses import InvalidAddress, validate_address
from neosl.pagination import Page, paginate
from neosl.tenancy import get_owned, owned_by
from neosl_api.services import idempotency


class NotConfigured(ServiceError):
    status = 503
    code = "unavailable"


def _active(user_id: int) -> Select[GasAccount]:
    return owned_by(GasAccount, user_id).where(GasAccount.deleted_at.is_(None))


def _get_account(
    session: Session, user_id: int, account_id: int, *, lock: bool = False
) -> GasAccount:
    account = get_owned(session, GasAccount, account_id, user_id, for_update=lock)
    if account.deleted_at is not None:
        # A removed account answers exactly like a missing one.
        raise NotFound(f"gas account {account_id} not found")
    return account


def register_account(session: Session, user_id: int, address: object) -> GasAccount:
    """Register a Neo N3 address the tenant owns; the first one becomes the default.

    Raises:
        InvalidInput: not a valid Neo N3 address (the message says why).
        Conflict: the address is registered already (by this or another tenant).
    """
    try:
        address = validate_address(address)
    except InvalidAddress as exc:
        raise InvalidInput(f"invalid address: {exc}", {"address": [str(exc)]}) from None
    has_default = session.scalar(select(exists(_active(user_id).where(GasAccount.is_default))))
    account = GasAccount(user_id=user_id, address=address, is_default=not has_default)
    session.add(account)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "this address is already registered",
            {"address": ["Registered already; deposits from it must credit one account only."]},
        ) from None
    return account


def list_accounts(
    session: Session, user_id: int, limit: int, cursor: str | None
) -> Page[GasAccount]:
    return paginate(session, _active(user_id), GasAccount.id, limit=limit, cursor=cursor)


def get_account(session: Session, user_id: int, account_id: int) -> GasAccount:
    return _get_account(session, user_id, account_id)


def set_default(session: Session, user_id: int, account_id: int) -> GasAccount:
    account = _get_account(session, user_id, account_id, lock=True)
    session.execute(
        update(GasAccount)
        .where(GasAccount.user_id == user_id, GasAccount.id != account_id, GasAccount.is_default)
        .values(is_default=False)
    )
    account.is_default = True
    session.commit()
    return account


def delete_account(session: Session, user_id: int, account_id: int) -> None:
    """Remove an account with zero balance and no withdrawal in flight; its history stays.

    Raises:
        Conflict: the balance is not zero, or a withdrawal is pending.
    """
    account = _get_account(session, user_id, account_id, lock=True)
    if account.balance != 0:
        raise Conflict(
            f"the account still holds {format_amount(account.balance)} GAS; withdraw it first"
        )
    pending = session.scalar(
        select(
            exists().where(Transaction.account_id == account.id, Transaction.status == "pending")
        )
    )
    if pending:
        raise Conflict("a withdrawal from this account is still pending")
    account.deleted_at = dt.datetime.now(dt.UTC)
    if account.is_default:
        account.is_default = False
        session.flush()
        heir = session.scalars(_active(user_id).order_by(GasAccount.id).limit(1)).first()
        if heir is not None:
            heir.is_default = True
    session.commit()


def deposit_address(settings: Settings) -> str:
    """Raises: NotConfigured: NSL_DEPOSIT_ADDRESS is not set."""
    if settings.deposit_address is None:
        raise NotConfigured("deposits are not configured on this service (NSL_DEPOSIT_ADDRESS)")
    return settings.deposit_address


@dataclass(frozen=True)
class WithdrawalRequest:
    user_id: int
    account_id: int
    amount: Decimal
    idempotency_key: str | None
    request_hash: str


def request_withdrawal(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    req: WithdrawalRequest,
    serialize: Callable[[Transaction], dict[str, Any]],
) -> idempotency.Outcome:
    """Debit a withdrawal as pending and hand it to the gas-ledger service.

    ``serialize`` turns the transactions row into the response body (the route's schema).

    Raises:
        MissingIdempotencyKey: no usable Idempotency-Key.
        Conflict: the key was used for another request.
        NotFound: no such account of this tenant.
        InvalidInput: below the minimum, above the maximum or over today's limit.
        InsufficientFunds: the balance does not cover the amount.
    """
    key = idempotency.check_key(req.idempotency_key)

    def debit() -> tuple[int, dict[str, Any]]:
        account = _get_account(session, req.user_id, req.account_id, lock=True)
        _check_limits(session, settings, req.user_id, req.amount)
        tx = ledger.debit_withdrawal(session, account, req.amount)
        return 202, serialize(tx)

    outcome = idempotency.run(session, req.user_id, key, req.request_hash, debit)
    if not outcome.replayed:
        # After the commit; if this send is lost, the ledger's reconcile pass re-drives the row.
        dispatcher.send(jobs.SEND_WITHDRAWAL, transaction_id=outcome.body["id"])
    return outcome


def _check_limits(session: Session, settings: Settings, user_id: int, amount: Decimal) -> None:
    def fail(message: str) -> InvalidInput:
        return InvalidInput(message, {"amount": [message]})

    if amount < settings.withdraw_min:
        raise fail(f"the minimum withdrawal is {format_amount(settings.withdraw_min)} GAS")
    if amount > settings.withdraw_max:
        raise fail(f"the maximum withdrawal is {format_amount(settings.withdraw_max)} GAS")
    today = ledger.withdrawn_today(session, user_id)
    if today + amount > settings.withdraw_daily:
        left = max(settings.withdraw_daily - today, Decimal(0))
        raise fail(
            f"over the daily limit of {format_amount(settings.withdraw_daily)} GAS "
            f"({format_amount(left)} left today, UTC)"
        )


@dataclass(frozen=True)
class TransactionFilter:
    account_id: int | None = None
    type: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def list_transactions(
    session: Session, user_id: int, f: TransactionFilter, limit: int, cursor: str | None
) -> Page[Transaction]:
    stmt = owned_by(Transaction, user_id)
    if f.account_id is not None:
        stmt = stmt.where(Transaction.account_id == f.account_id)
    if f.type is not None:
        stmt = stmt.where(Transaction.type == f.type)
    if f.status is not None:
        stmt = stmt.where(Transaction.status == f.status)
    if f.since is not None:
        stmt = stmt.where(Transaction.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Transaction.created_at < f.until)
    return paginate(session, stmt, Transaction.id, limit=limit, cursor=cursor)


def get_transaction(session: Session, user_id: int, transaction_id: int) -> Transaction:
    return get_owned(session, Transaction, transaction_id, user_id)
