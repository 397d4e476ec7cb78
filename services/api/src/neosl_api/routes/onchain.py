"""On-chain actions: the tenant's signer, and contract calls sent through the relay."""

from __future__ import annotations

from typing import Any

from flask import Response

from neosl.models import NeoAction, NeoSigner
from neosl_api import context, idempotency
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import page_of
from neosl_api.schemas.onchain import (
    ActionCreateSchema,
    ActionFilterSchema,
    ActionSchema,
    SignerSchema,
)
from neosl_api.services import onchain

blp = Blueprint("onchain", __name__, url_prefix="/v1/neo", description="On-chain actions")


@blp.route("/signer", methods=["GET"])
@blp.response(200, SignerSchema)
@blp.alt_response(503, description="Signers are not configured on this service")
def get_signer() -> NeoSigner:
    """Your own Neo N3 signer account (created on first use). Authorize it in your contracts
    with CheckWitness: the relay adds it to your transactions (scope CalledByEntry)."""
    return onchain.get_signer(context.db(), context.settings(), context.current_user().id)


@blp.route("/actions", methods=["POST"])
@blp.arguments(ActionCreateSchema)
@blp.response(202, ActionSchema)
@blp.alt_response(
    402,
    description="Your default gas account cannot cover the most the relay holds for an "
    "action (NSL_ACTION_MAX_FEE plus the service fee)",
)
@blp.alt_response(
    409,
    description="The key was used for another request, or you have "
    "NSL_ACTIONS_IN_FLIGHT_PER_TENANT actions queued or pending",
)
@blp.alt_response(422, description="Invalid contract, method or arguments")
@blp.doc(**idempotency.OPENAPI)
def create_action(body: dict[str, Any]) -> Response:
    """Queue a contract call: test-invoked, paid from your gas account, sent and settled by
    the relay. Your default gas account must cover the most the relay holds while it is
    in flight (NSL_ACTION_MAX_FEE in chain fees plus the service fee), settled to what the
    chain takes. Watch its status with GET /v1/neo/actions/{id}."""
    return idempotency.respond(
        202,
        lambda: ActionSchema().dump(
            onchain.create_action(
                context.db(),
                context.settings(),
                context.dispatcher(),
                context.current_user().id,
                body,
            )
        ),
    )


@blp.route("/actions", methods=["GET"])
@blp.arguments(ActionFilterSchema, location="query")
@blp.response(200, page_of(ActionSchema))
def list_actions(args: dict[str, Any]) -> Page[NeoAction]:
    """Your actions, newest first, filtered by status, execution and time."""
    f = onchain.ActionFilter(
        status=args["status"],
        execution_id=args["execution_id"],
        since=args["since"],
        until=args["until"],
    )
    return onchain.list_actions(
        context.db(), context.current_user().id, f, args["limit"], args["cursor"]
    )


@blp.route("/actions/<int:action_id>", methods=["GET"])
@blp.response(200, ActionSchema)
def get_action(action_id: int) -> NeoAction:
    """One action: its call, status, transaction, block and what it cost."""
    return onchain.get_action(context.db(), context.current_user().id, action_id)
