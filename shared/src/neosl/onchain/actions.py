"""On-chain actions: contract calls a tenant asks the relay to send.

They come from three places: ``POST /v1/neo/actions`` (a relayer API), the ``neo.invoke``
calls of a function's execution that succeeded, and price rounds a feed publishes
(``neosl_pricefeed.publishing``). All check the call the same way (``check``), store it as
a ``queued`` ``neo_actions`` row and send the gasbank a ``RELAY_ACTION`` job once the row
is committed. What happens next is the relay's
(``neosl_gasbank.actions``).

A tenant has at most ``NSL_ACTIONS_IN_FLIGHT_PER_TENANT`` actions queued or pending: one more
is refused (``TooManyInFlight``: the API's 409) or, from an execution, stored ``failed`` with
the reason and never sent. Price round publications count but are never refused: a feed
has one in flight at most.

Who commits: the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neosl import jobs
from neosl.config import Settings
from neosl.db import lock_tenant
from neosl.dispatch import Dispatcher
from neosl.errors import Conflict, InvalidInput
from neosl.gas.money import format_amount
from neosl.models import NeoAction
from neosl.neo import params

# pg_advisory_xact_lock class of a tenant's actions in flight (against
# NSL_ACTIONS_IN_FLIGHT_PER_TENANT), listed in the API's ``TenantLock`` with every other.
IN_FLIGHT_LOCK = 0x6163
IN_FLIGHT = ("queued", "pending")


class TooManyInFlight(Conflict):
    """The tenant has ``NSL_ACTIONS_IN_FLIGHT_PER_TENANT`` actions queued or pending."""


_CONTRACT = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


@dataclass(frozen=True)
class Call:
    """A checked contract call; ``args`` in canonical JSON (``params.to_json``)."""

    contract: str
    method: str
    args: list[Any]


def check_target(contract: object, method: object) -> tuple[str, str]:
    """``(contract, method)`` normalised: ``0x`` + 40 lowercase hex digits, and a name.

    Raises:
        InvalidInput: naming the field.
    """
    if not isinstance(contract, str) or not _CONTRACT.match(contract):
        raise InvalidInput(
            "contract must be a script hash: 0x and 40 hex digits",
            {"contract": ["Not a script hash."]},
        )
    if not isinstance(method, str) or not _METHOD.match(method):
        raise InvalidInput(
            "method must be 1-100 letters, digits and _, not starting with a digit",
            {"method": ["Not a method name."]},
        )
    return "0x" + contract.lower().removeprefix("0x"), method


def check(contract: object, method: object, args: object) -> Call:
    """Raises:
    InvalidInput: the contract, method or an argument (named with its position).
    """
    contract, method = check_target(contract, method)
    try:
        parsed = params.parse_args([] if args is None else args)
    except params.ParamError as exc:
        raise InvalidInput(str(exc), {"args": [str(exc)]}) from None
    return Call(contract, method, list(params.to_json(parsed)))


def service_fee(settings: Settings, charge_type: str) -> Decimal:
    """The relay's fee for an action on top of its chain fees, GAS."""
    return (
        settings.pricefeed_service_fee
        if charge_type == "pricefeed"
        else settings.action_service_fee
    )


def most_held(settings: Settings, charge_type: str) -> Decimal:
    """The most the relay can hold for an action while it is in flight: chain fees up to
    ``NSL_ACTION_MAX_FEE`` (beyond, the action fails unsent) plus the service fee."""
    return settings.action_max_fee + service_fee(settings, charge_type)


def describe_most_held(settings: Settings, charge_type: str) -> str:
    """``most_held`` with how it is made up, for messages."""
    return (
        f"{format_amount(most_held(settings, charge_type))} GAS (up to "
        f"{format_amount(settings.action_max_fee)} in chain fees, NSL_ACTION_MAX_FEE, and a "
        f"{format_amount(service_fee(settings, charge_type))} service fee)"
    )


def in_flight(session: Session, user_id: int) -> int:
    """The tenant's actions queued or pending."""
    return (
        session.scalar(
            select(func.count()).where(
                NeoAction.user_id == user_id, NeoAction.status.in_(IN_FLIGHT)
            )
        )
        or 0
    )


def make_room(session: Session, user_id: int, limit: int) -> None:
    """Take the tenant's in-flight lock (held until the transaction ends, so concurrent
    producers count one after the other) and check that one more action fits.

    Raises:
        TooManyInFlight: ``limit`` actions are queued or pending already.
    """
    lock_tenant(session, IN_FLIGHT_LOCK, user_id)
    count = in_flight(session, user_id)
    if count >= limit:
        raise TooManyInFlight(
            f"you have {count} on-chain actions queued or pending, the most allowed "
            "(NSL_ACTIONS_IN_FLIGHT_PER_TENANT); wait for some to settle"
        )


def queue(
    session: Session,
    dispatcher: Dispatcher,
    user_id: int,
    call: Call,
    *,
    execution_id: int | None = None,
    position: int | None = None,
    price_round_id: int | None = None,
    as_publisher: bool = False,
    limit: int | None = None,
    refuse_over_limit: bool = False,
) -> NeoAction:
    """Store a queued action; its relay job is sent once the caller commits.

    With ``price_round_id`` the action publishes that price round and is charged as
    ``pricefeed``; ``as_publisher`` has the service's publisher witness it instead of the
    tenant's signer (the price feed worker's calls of the PriceFeed contract only).

    Past ``limit`` actions in flight (``NSL_ACTIONS_IN_FLIGHT_PER_TENANT``; required but
    for a publication) the action is stored
    ``failed`` with the reason and nothing is sent, so that an execution's ``neo.invoke``
    never fails its execution's unit of work; with ``refuse_over_limit`` nothing is stored.
    A publication is never refused.

    Raises:
        TooManyInFlight: past the limit, with ``refuse_over_limit``.
        ValueError: a tenant's action without its ``limit``.
    """
    refused = None
    if price_round_id is None:
        if limit is None:
            raise ValueError("a tenant's action needs its in-flight limit")
        try:
            make_room(session, user_id, limit)
        except TooManyInFlight as exc:
            if refuse_over_limit:
                raise
            refused = exc.message
    action = NeoAction(
        user_id=user_id,
        execution_id=execution_id,
        position=position,
        contract=call.contract,
        method=call.method,
        args=call.args,
        status="queued" if refused is None else "failed",
        failure_reason=refused,
        settled_at=None if refused is None else dt.datetime.now(dt.UTC),
        price_round_id=price_round_id,
        charge_type="function" if price_round_id is None else "pricefeed",
        as_publisher=as_publisher,
    )
    session.add(action)
    session.flush()
    if refused is None:
        dispatcher.send_after_commit(session, jobs.RELAY_ACTION, action_id=action.id)
    return action
