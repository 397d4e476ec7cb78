"""The dev stack's starter balance: a new tenant can invoke and fire triggers at once.

Only when ``NSL_DEV_STARTER_GAS`` is above 0, which ``neosl-dev up`` sets (with its faucet's
address) and no production configuration does. The dev stack keeps a pool of deposits of
that amount made on its chain from its faucet address to the hot wallet; nobody's account
has that address, so the ledger holds each as an unmatched deposit. Registering takes one
of them and credits it, as an operator would (``ledger.credit_unmatched``), to a default
account made for the tenant: real GAS in the hot wallet behind a real deposit row, so the
ledger's check holds. The account's address belongs to no key (nothing can be sent from
it); a tenant who deposits its own GAS proves its own address and makes it the default.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from neo3.core.types import UInt160
from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.gas import ledger
from neosl.models import GasAccount, UnmatchedDeposit
from neosl.neo.addresses import script_hash_to_address

log = logging.getLogger(__name__)


def grant(session: Session, settings: Settings, user_id: int) -> GasAccount | None:
    """Give the new tenant ``user_id`` a starter balance, in the caller's transaction (the
    caller commits); the account made, or None when there is no starter balance to give
    (off, or the dev stack's pool is empty)."""
    if settings.dev_starter_gas <= 0 or settings.dev_faucet_address is None:
        return None
    deposit = session.scalars(
        select(UnmatchedDeposit)
        .where(
            UnmatchedDeposit.from_address == settings.dev_faucet_address,
            UnmatchedDeposit.amount == settings.dev_starter_gas,
            UnmatchedDeposit.credited_transaction_id.is_(None),
        )
        .order_by(UnmatchedDeposit.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if deposit is None:
        log.warning("no starter deposit left for tenant %s: the dev stack's pool is empty", user_id)
        return None
    account = GasAccount(
        user_id=user_id,
        # An address no key belongs to: the dev stack's own, for the starter balance only.
        address=script_hash_to_address(UInt160(os.urandom(20))),
        is_default=True,
        verified_at=dt.datetime.now(dt.UTC),
    )
    session.add(account)
    session.flush()
    ledger.credit_unmatched(session, deposit.id, account.id)
    return account
