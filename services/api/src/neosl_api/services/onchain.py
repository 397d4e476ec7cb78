"""The tenant's Neo N3 signer and on-chain actions, as the API offers them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.errors import PaymentRequired
from neosl.gas import ledger
from neosl.models import NeoAction, NeoSigner
from neosl.onchain import actions, relaybox, signers
from neosl_api.pagination import Page, paginate
from neosl_api.tenancy import get_owned, owned_by


def get_signer(session: Session, settings: Settings, user_id: int) -> NeoSigner:
    """The tenant's signer, created on first use.

    Raises:
        signers.SignersUnavailable: none yet, and no relay public key is configured.
    """
    signer = signers.get_or_create(session, user_id, relaybox.relay_public_key(settings))
    session.commit()
    return signer


def create_action(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    user_id: int,
    body: dict[str, Any],
) -> NeoAction:
    """Queue a contract call for the relay.

    The tenant's default account must cover the most the relay may hold for it
    (``actions.most_held``), and the tenant may have at most
    ``NSL_ACTIONS_IN_FLIGHT_PER_TENANT`` actions queued or pending (counted under the
    tenant's ``TenantLock.ACTIONS_IN_FLIGHT``, which ``actions.queue`` takes).

    Writes through ``session`` without committing: the entrypoint commits it together with
    the request's idempotency record, and the relay job is sent only once that commit
    happened.

    Raises:
        InvalidInput: the contract, method or an argument (named).
        PaymentRequired: the default account cannot cover the hold (nothing is queued).
        actions.TooManyInFlight: a Conflict; nothing is queued.
    """
    call = actions.check(body["contract"], body["method"], body["args"])
    if not ledger.can_pay(session, user_id, actions.most_held(settings, "function")):
        held = actions.describe_most_held(settings, "function")
        raise PaymentRequired(
            f"your default gas account cannot pay for this action: while it is in flight "
            f"the relay holds up to {held}, settled to what the chain takes; deposit GAS first",
            {"balance": [f"Insufficient for a hold of {held}."]},
        )
    action = actions.queue(
        session,
        dispatcher,
        user_id,
        call,
        limit=settings.actions_in_flight_per_tenant,
        refuse_over_limit=True,
    )
    session.flush()
    session.refresh(action)
    return action


@dataclass(frozen=True)
class ActionFilter:
    status: str | None = None
    execution_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def list_actions(
    session: Session, user_id: int, f: ActionFilter, limit: int, cursor: str | None
) -> Page[NeoAction]:
    stmt = owned_by(NeoAction, user_id)
    if f.status is not None:
        stmt = stmt.where(NeoAction.status == f.status)
    if f.execution_id is not None:
        stmt = stmt.where(NeoAction.execution_id == f.execution_id)
    if f.since is not None:
        stmt = stmt.where(NeoAction.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(NeoAction.created_at < f.until)
    return paginate(session, stmt, NeoAction.id, limit=limit, cursor=cursor)


def get_action(session: Session, user_id: int, action_id: int) -> NeoAction:
    return get_owned(session, NeoAction, action_id, user_id)


def actions_of(session: Session, user_id: int, execution_id: int) -> list[NeoAction]:
    """An execution's actions, in the order it asked for them."""
    return list(
        session.scalars(
            select(NeoAction)
            .where(NeoAction.user_id == user_id, NeoAction.execution_id == execution_id)
            .order_by(NeoAction.position, NeoAction.id)
        )
    )
