"""Gas bank use cases of the API: proven accounts, the deposit address, withdrawals, history.

Every use case that changes a tenant's accounts or withdraws takes the tenant's gas-bank lock
first (``_lock_tenant``), in one order everywhere: tenant, then account rows. Concurrent
"make default" calls, two first accounts at once and withdrawals against the per-day limit
from several accounts are then decided one after the other, never by a unique-index error.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.errors import Conflict, InvalidInput, NotFound, ServiceError
from neosl.gas import ledger
from neosl.gas.money import format_amount
from neosl.models import GasAccount, GasAddressChallenge, Transaction, User
from neosl.models.gas import CHARGE_TYPES
from neosl.neo.addresses import InvalidAddress, validate_address
from neosl.onchain.blocks import DEPOSITS
from neosl.onchain.deployment import followed
from neosl_api.messages import InvalidProof, verify_ownership
from neosl_api.pagination import Page, paginate
from neosl_api.tenancy import TenantLock, get_owned, lock_tenant, owned_by

# Open challenges kept per tenant and address; older ones are dropped.
_OPEN_CHALLENGES = 5
# Pending transactions named in the answer to a refused account removal.
_PENDING_SHOWN = 20


class NotConfigured(ServiceError):
    status = 503
    code = "unavailable"


def _lock_tenant(session: Session, user_id: int) -> None:
    lock_tenant(session, user_id, TenantLock.GAS_BANK)


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


def _address(value: object) -> str:
    try:
        return validate_address(value)
    except InvalidAddress as exc:
        raise InvalidInput(f"invalid address: {exc}", {"address": [str(exc)]}) from None


def service_addresses(settings: Settings) -> frozenset[str]:
    """Addresses of the service itself, which no tenant may register.

    Deposits from them would be the service paying itself; the deposit address is the hot
    wallet's. Later service accounts (signers, publishers) are added here.
    """
    return frozenset(a for a in (settings.deposit_address,) if a is not None)


def _not_ours(settings: Settings, address: str) -> None:
    if address in service_addresses(settings):
        message = "this is an address of the service itself; it cannot be registered"
        raise InvalidInput(message, {"address": [message]})


@dataclass(frozen=True)
class Challenge:
    address: str
    message: str
    expires_at: dt.datetime


def new_challenge(session: Session, settings: Settings, user_id: int, address: object) -> Challenge:
    """A one-time message proving, once signed, that the tenant holds ``address``'s key.

    It names the service, the tenant, the address, a random nonce and its expiry.

    Raises:
        InvalidInput: not a valid address, or an address of the service itself.
    """
    address = _address(address)
    _not_ours(settings, address)
    user = session.get_one(User, user_id)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires_at = now + dt.timedelta(seconds=settings.address_challenge_ttl_seconds)
    message = "\n".join(
        [
            f"{settings.service_name}: prove that you own this Neo N3 address.",
            f"Tenant: {user.username} (#{user.id})",
            f"Address: {address}",
            f"Nonce: {secrets.token_hex(16)}",
            f"Expires: {expires_at.isoformat().replace('+00:00', 'Z')}",
        ]
    )
    # Keep the table small: drop this tenant's dead challenges and all but the newest few
    # open ones for the address.
    session.execute(
        delete(GasAddressChallenge).where(
            GasAddressChallenge.user_id == user_id,
            (GasAddressChallenge.expires_at < now) | GasAddressChallenge.used_at.is_not(None),
        )
    )
    keep = (
        select(GasAddressChallenge.id)
        .where(GasAddressChallenge.user_id == user_id, GasAddressChallenge.address == address)
        .order_by(GasAddressChallenge.id.desc())
        .limit(_OPEN_CHALLENGES - 1)
    )
    session.execute(
        delete(GasAddressChallenge).where(
            GasAddressChallenge.user_id == user_id,
            GasAddressChallenge.address == address,
            GasAddressChallenge.id.not_in(keep),
        )
    )
    session.add(
        GasAddressChallenge(
            user_id=user_id, address=address, message=message, expires_at=expires_at
        )
    )
    session.commit()
    return Challenge(address, message, expires_at)


@dataclass(frozen=True)
class Proof:
    address: object
    public_key: object
    signature: object
    salt: object = None


@dataclass(frozen=True)
class Registration:
    account: GasAccount
    created: bool  # False: an account from before proofs existed is now verified


def register_account(
    session: Session, settings: Settings, user_id: int, proof: Proof
) -> Registration:
    """Register an address the tenant proved it owns; the first account becomes the default.

    The proof is a wallet signature over an open challenge of this tenant for this address
    (``new_challenge``); the challenge is used up when the account is registered. An
    unproven account the tenant registered before proofs existed is verified in place.

    Raises:
        InvalidInput: not a valid address, an address of the service, no open challenge
            (none asked for, or expired), or the proof does not hold (the message says why).
        Conflict: the address is registered and proven already (by this or another tenant).
    """
    address = _address(proof.address)
    _not_ours(settings, address)
    for name, value in (("public_key", proof.public_key), ("signature", proof.signature)):
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a hex string", {name: ["Must be a hex string."]})
    if proof.salt is not None and not isinstance(proof.salt, str):
        raise InvalidInput("salt must be a string", {"salt": ["Must be a string."]})
    _lock_tenant(session, user_id)
    now = dt.datetime.now(dt.UTC)
    challenge = _verified_challenge(session, user_id, address, proof, now)
    taken = session.scalar(
        select(GasAccount.user_id).where(
            GasAccount.address == address,
            GasAccount.deleted_at.is_(None),
            GasAccount.verified_at.is_not(None),
        )
    )
    if taken is not None:
        raise _registered_already()
    challenge.used_at = now
    account = session.scalars(_active(user_id).where(GasAccount.address == address)).one_or_none()
    created = account is None
    if account is None:
        has_default = session.scalar(select(exists(_active(user_id).where(GasAccount.is_default))))
        account = GasAccount(user_id=user_id, address=address, is_default=not has_default)
        session.add(account)
    account.verified_at = now
    account.public_key = str(proof.public_key).lower()
    try:
        session.commit()
    except IntegrityError:
        # Another tenant proved the same address at the same moment and committed first.
        session.rollback()
        raise _registered_already() from None
    return Registration(account, created)


def _registered_already() -> Conflict:
    return Conflict(
        "this address is already registered",
        {"address": ["Registered and proven already; deposits from it credit one account."]},
    )


def _verified_challenge(
    session: Session, user_id: int, address: str, proof: Proof, now: dt.datetime
) -> GasAddressChallenge:
    """The open challenge the proof signs, locked; raises InvalidInput saying what is wrong."""
    challenges = session.scalars(
        select(GasAddressChallenge)
        .where(
            GasAddressChallenge.user_id == user_id,
            GasAddressChallenge.address == address,
            GasAddressChallenge.used_at.is_(None),
        )
        .order_by(GasAddressChallenge.id.desc())
        .with_for_update()
    ).all()
    open_ = [c for c in challenges if c.expires_at > now]
    if not open_:
        message = (
            "the challenge for this address has expired; ask for a new one"
            if challenges
            else "no open challenge for this address: GET /v1/gas/accounts/challenge first"
        )
        raise InvalidInput(message, {"signature": [message]})
    reason = ""
    for challenge in open_:
        try:
            verify_ownership(
                address,
                challenge.message,
                str(proof.public_key),
                str(proof.signature),
                None if proof.salt is None else str(proof.salt),
            )
        except InvalidProof as exc:
            reason = str(exc)
            continue
        return challenge
    raise InvalidInput(f"ownership not proven: {reason}", {"signature": [reason]})


def list_accounts(
    session: Session, user_id: int, limit: int, cursor: str | None
) -> Page[GasAccount]:
    return paginate(session, _active(user_id), GasAccount.id, limit=limit, cursor=cursor)


def get_account(session: Session, user_id: int, account_id: int) -> GasAccount:
    return _get_account(session, user_id, account_id)


def set_default(session: Session, user_id: int, account_id: int) -> GasAccount:
    """Pay charges from this account from now on.

    Raises:
        NotFound: no such account of this tenant.
    """
    _lock_tenant(session, user_id)
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
    """Remove an account with zero balance and nothing in flight; its history stays.

    In flight is any ``pending`` transaction of the account: a withdrawal, or a hold (the most
    an on-chain action or an execution can cost, held until it settles). Settling refunds
    what was not spent to this very account, so it must not be gone by then. Holds and
    withdrawals take the account's row lock, as this does: one that commits first is seen.

    Raises:
        NotFound: no such account of this tenant.
        Conflict: the balance is not zero, or a transaction is pending.
    """
    _lock_tenant(session, user_id)
    account = _get_account(session, user_id, account_id, lock=True)
    if account.balance != 0:
        raise Conflict(
            f"the account still holds {format_amount(account.balance)} GAS; withdraw it first"
        )
    pending = session.execute(
        select(Transaction.id, Transaction.type)
        .where(Transaction.account_id == account.id, Transaction.status == "pending")
        .order_by(Transaction.id)
    ).all()
    if pending:
        raise Conflict(
            _pending_message({row.type for row in pending}),
            {"pending_transactions": [row.id for row in pending[:_PENDING_SHOWN]]},
        )
    account.deleted_at = dt.datetime.now(dt.UTC)
    if account.is_default:
        account.is_default = False
        session.flush()
        heir = session.scalars(_active(user_id).order_by(GasAccount.id).limit(1)).first()
        if heir is not None:
            heir.is_default = True
    session.commit()


def _pending_message(types: set[str]) -> str:
    what = []
    if "withdraw" in types:
        what.append("a withdrawal is pending")
    if types & set(CHARGE_TYPES):
        what.append("fees are held for on-chain actions or executions in flight")
    if types - {"withdraw", *CHARGE_TYPES}:
        what.append("a transaction is pending")
    return (
        f"the account cannot be removed while {' and '.join(what)}; try again once they "
        "settle (GET /v1/gas/transactions?status=pending)"
    )


def deposit_address(session: Session, settings: Settings) -> str:
    """Where tenants send GAS.

    Raises:
        NotConfigured: the gas bank is off, or this API's NSL_DEPOSIT_ADDRESS is not the
            address the deployment's chain follower watches (showing it would send tenants'
            GAS where nobody credits it).
    """
    if not settings.gas_bank_enabled or settings.deposit_address is None:
        raise NotConfigured("deposits are not configured on this service (NSL_DEPOSIT_ADDRESS)")
    watched = followed(session).get(DEPOSITS)
    if watched is not None and not watched.endswith(f" to {settings.deposit_address}"):
        raise NotConfigured(
            "this API's NSL_DEPOSIT_ADDRESS is not the address the chain follower watches; "
            "deposits are unavailable until the operator fixes the configuration"
        )
    return settings.deposit_address


def request_withdrawal(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    user_id: int,
    account_id: int,
    amount: Decimal,
) -> Transaction:
    """Debit a withdrawal as pending; the gasbank sends it after the commit.

    Writes through ``session`` without committing: the entrypoint commits it together with
    the request's idempotency record, and the job is sent only once that commit happened.

    Raises:
        NotFound: no such account of this tenant.
        InvalidInput: below the minimum, above the maximum or over today's limit (per tenant,
            across all its accounts).
        InsufficientFunds: the balance does not cover the amount.
    """
    _lock_tenant(session, user_id)
    account = _get_account(session, user_id, account_id, lock=True)
    _check_limits(session, settings, user_id, amount)
    tx = ledger.debit_withdrawal(session, account, amount)
    dispatcher.send_after_commit(session, jobs.SEND_WITHDRAWAL, transaction_id=tx.id)
    return tx


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
