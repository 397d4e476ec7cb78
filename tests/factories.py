"""Rows for tests, written through the models (no HTTP)."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from decimal import Decimal

from neo3.wallet.account import Account
from sqlalchemy.orm import Session

from neosl.gas import ledger
from neosl.models import Function, GasAccount, User

_seq = itertools.count(1)


def make_user(db: Session, name: str | None = None) -> User:
    name = name or f"user{next(_seq)}"
    user = User(username=name, email=f"{name.lower()}@example.com", password_hash="x")
    db.add(user)
    db.flush()
    return user


def make_function(db: Session, user: User, name: str | None = None) -> Function:
    fn = Function(user_id=user.id, name=name or f"fn{next(_seq)}", source_code="return 1")
    db.add(fn)
    db.flush()
    return fn


def make_account(
    db: Session,
    user: User,
    address: str | None = None,
    *,
    default: bool = True,
    verified: bool = True,
) -> GasAccount:
    """A gas account; proven (``verified_at`` set) unless ``verified=False``, like accounts
    registered before proofs existed."""
    account = GasAccount(
        user_id=user.id,
        address=address or new_address(),
        is_default=default,
        verified_at=dt.datetime.now(dt.UTC) if verified else None,
    )
    db.add(account)
    db.flush()
    return account


def new_address() -> str:
    """A fresh, valid Neo N3 address (its key is thrown away)."""
    return str(Account.from_private_key(secrets.token_bytes(32)).address)


def new_account_key() -> tuple[str, str]:
    """(WIF, address) of a fresh key, for tests that sign."""
    key = secrets.token_bytes(32)
    return str(Account.private_key_to_wif(key)), str(Account.from_private_key(key).address)


def credit(db: Session, account: GasAccount, amount: str) -> ledger.DepositOutcome:
    """Credit a deposit of ``amount`` GAS as if the chain follower had seen one (caller commits)."""
    return ledger.credit_deposit(
        db,
        tx_hash="0x" + secrets.token_hex(32),
        notification_index=0,
        block_index=0,
        from_address=account.address,
        amount=Decimal(amount),
    )
