"""On-chain actions: contract calls a tenant asks the relay to send.

They come from three places: ``POST /v1/neo/actions`` (a relayer API), the ``neo.invoke``
calls of a function's execution that succeeded, and price rounds a feed publishes
(``neosl_pricefeed.publishing``). All check the call the same way (``check``), store it as
a ``queued`` ``neo_actions`` row and send the gasbank a ``RELAY_ACTION`` job once the row
is committed. What happens next is the relay's
(``neosl_gasbank.actions``).

Who commits: the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from neosl import jobs
from neosl.dispatch import Dispatcher
from neosl.errors import InvalidInput
from neosl.models import NeoAction
from neosl.neo import params

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
) -> NeoAction:
    """Store a queued action; its relay job is sent once the caller commits.

    With ``price_round_id`` the action publishes that price round and is charged as
    ``pricefeed``; ``as_publisher`` has the service's publisher witness it instead of the
    tenant's signer (the price feed worker's calls of the PriceFeed contract only).
    """
    action = NeoAction(
        user_id=user_id,
        execution_id=execution_id,
        position=position,
        contract=call.contract,
        method=call.method,
        args=call.args,
        status="queued",
        price_round_id=price_round_id,
        charge_type="function" if price_round_id is None else "pricefeed",
        as_publisher=as_publisher,
    )
    session.add(action)
    session.flush()
    dispatcher.send_after_commit(session, jobs.RELAY_ACTION, action_id=action.id)
    return action
