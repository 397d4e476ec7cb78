"""The gas bank: accounts, deposits, withdrawals and the ledger history."""

from __future__ import annotations

from typing import Any

from flask import Response

from neosl.models import GasAccount, Transaction
from neosl_api import context, idempotency
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import PageArgsSchema, page_of
from neosl_api.schemas.gas import (
    ChallengeArgsSchema,
    ChallengeSchema,
    DepositAddressSchema,
    GasAccountCreateSchema,
    GasAccountSchema,
    TransactionFilterSchema,
    TransactionSchema,
    WithdrawSchema,
)
from neosl_api.services import gas

blp = Blueprint("gas", __name__, url_prefix="/v1/gas", description="Gas bank")


@blp.route("/accounts/challenge", methods=["GET"])
@blp.arguments(ChallengeArgsSchema, location="query")
@blp.response(200, ChallengeSchema)
def challenge(args: dict[str, Any]) -> gas.Challenge:
    """A one-time message to sign with the address's key (valid 10 minutes by default)."""
    return gas.new_challenge(
        context.db(), context.settings(), context.current_user().id, args["address"]
    )


@blp.route("/accounts", methods=["POST"])
@blp.arguments(GasAccountCreateSchema)
@blp.response(201, GasAccountSchema)
@blp.alt_response(200, schema=GasAccountSchema, description="An unproven account is now proven")
@blp.alt_response(409, description="Address already registered")
@blp.alt_response(422, description="No open challenge, or the proof does not hold")
def create_account(body: dict[str, Any]) -> tuple[GasAccount, int]:
    """Register a Neo N3 address you proved you own. Deposits from it credit this account.

    First `GET /v1/gas/accounts/challenge?address=…`, sign its `message` in your wallet
    (NeoLine / neon-js `signMessage`), then send the address, the public key, the signature
    and the wallet's salt (if it added one).
    """
    proof = gas.Proof(body["address"], body["public_key"], body["signature"], body.get("salt"))
    result = gas.register_account(
        context.db(), context.settings(), context.current_user().id, proof
    )
    return result.account, 201 if result.created else 200


@blp.route("/accounts", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(GasAccountSchema))
def list_accounts(args: dict[str, Any]) -> Page[GasAccount]:
    """Your gas accounts, newest first."""
    return gas.list_accounts(context.db(), context.current_user().id, args["limit"], args["cursor"])


@blp.route("/accounts/<int:account_id>", methods=["GET"])
@blp.response(200, GasAccountSchema)
def get_account(account_id: int) -> GasAccount:
    """One of your gas accounts, with its balance."""
    return gas.get_account(context.db(), context.current_user().id, account_id)


@blp.route("/accounts/<int:account_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(409, description="Balance not zero, or a withdrawal or a held fee pending")
def delete_account(account_id: int) -> None:
    """Remove an account with zero balance and nothing pending. Its history is kept."""
    gas.delete_account(context.db(), context.current_user().id, account_id)


@blp.route("/accounts/<int:account_id>/default", methods=["POST"])
@blp.response(200, GasAccountSchema)
def make_default(account_id: int) -> GasAccount:
    """Pay charges from this account."""
    return gas.set_default(context.db(), context.current_user().id, account_id)


@blp.route("/accounts/<int:account_id>/withdraw", methods=["POST"])
@blp.arguments(WithdrawSchema)
@blp.response(202, TransactionSchema)
@blp.alt_response(409, description="Insufficient funds, or the key was used for another request")
@blp.doc(**idempotency.OPENAPI)
def withdraw(body: dict[str, Any], account_id: int) -> Response:
    """Withdraw GAS to the account's address. Debited now as pending; confirmed on chain."""
    return idempotency.respond(
        202,
        lambda: TransactionSchema().dump(
            gas.request_withdrawal(
                context.db(),
                context.settings(),
                context.dispatcher(),
                context.current_user().id,
                account_id,
                body["amount"],
            )
        ),
    )


@blp.route("/deposit-address", methods=["GET"])
@blp.response(200, DepositAddressSchema)
def deposit_address() -> dict[str, str]:
    """Where to send GAS: transfers from one of your registered addresses credit it."""
    return {
        "address": gas.deposit_address(context.db(), context.settings()),
        "note": "Send GAS from an address registered under /v1/gas/accounts; "
        "transfers from other addresses cannot be credited automatically.",
    }


@blp.route("/transactions", methods=["GET"])
@blp.arguments(TransactionFilterSchema, location="query")
@blp.response(200, page_of(TransactionSchema))
def list_transactions(args: dict[str, Any]) -> Page[Transaction]:
    """Your ledger, newest first, filtered by account, type, status and time."""
    f = gas.TransactionFilter(
        account_id=args["account_id"],
        type=args["type"],
        status=args["status"],
        since=args["since"],
        until=args["until"],
    )
    return gas.list_transactions(
        context.db(), context.current_user().id, f, args["limit"], args["cursor"]
    )


@blp.route("/transactions/<int:transaction_id>", methods=["GET"])
@blp.response(200, TransactionSchema)
def get_transaction(transaction_id: int) -> Transaction:
    """One ledger entry; a withdrawal's status, tx hash and failure reason show here."""
    return gas.get_transaction(context.db(), context.current_user().id, transaction_id)
