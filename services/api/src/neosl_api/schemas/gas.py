from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma

from neosl.gas.money import InvalidAmount, format_amount, parse_amount
from neosl.models.gas import TRANSACTION_STATUSES, TRANSACTION_TYPES
from neosl_api.schemas.common import PageArgsSchema, StrictSchema


class GasAmount(ma.fields.Field):  # type: ignore[type-arg]
    """A GAS amount as a decimal string ("1.5"), exact; never a JSON number."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update(
            {
                "type": "string",
                "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?$",
                "example": "1.5",
            }
        )
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_amount(Decimal(value))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_amount(value)
        except InvalidAmount as exc:
            raise ma.ValidationError(str(exc)) from None


def _address_field(description: str) -> ma.fields.String:
    # Only documents the shape; the address itself (checksum included) is checked by the
    # service so the error can say what is wrong.
    return ma.fields.String(
        required=True,
        metadata={
            "description": description,
            "pattern": "^N[1-9A-HJ-NP-Za-km-z]{33}$",
            "example": "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs",
        },
    )


class ChallengeArgsSchema(StrictSchema):
    address = _address_field("The Neo N3 address you want to register.")


class ChallengeSchema(ma.Schema):
    address = ma.fields.String(required=True)
    message = ma.fields.String(
        required=True, metadata={"description": "Sign exactly this text in your wallet."}
    )
    expires_at = ma.fields.DateTime(required=True)


class GasAccountCreateSchema(StrictSchema):
    address = _address_field("A Neo N3 address you own (N…, 34 characters).")
    # Shapes only; the service checks the proof and says what is wrong.
    public_key = ma.fields.String(
        required=True,
        validate=ma.validate.Length(max=200),
        metadata={
            "description": "The address's compressed secp256r1 public key, hex (66 digits).",
            "pattern": "^0[23][0-9a-fA-F]{64}$",
        },
    )
    signature = ma.fields.String(
        required=True,
        validate=ma.validate.Length(max=400),
        metadata={
            "description": "The wallet's signature of the challenge message: r‖s, hex "
            "(128 digits).",
            "pattern": "^[0-9a-fA-F]{128}$",
        },
    )
    salt = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=256),
        metadata={"description": "The salt the wallet added to the message, if any."},
    )


class GasAccountSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    address = ma.fields.String(required=True)
    balance = GasAmount(required=True)
    is_default = ma.fields.Boolean(
        required=True, metadata={"description": "Charges are paid from the default account."}
    )
    verified = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "Ownership proven. Deposits from an unproven address (accounts "
            "from before proofs) are not credited; prove it by registering it again."
        },
    )
    created_at = ma.fields.DateTime(required=True)


class DepositAddressSchema(ma.Schema):
    address = ma.fields.String(required=True)
    note = ma.fields.String(required=True)


class WithdrawSchema(StrictSchema):
    amount = GasAmount(required=True)


class TransactionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    account_id = ma.fields.Integer(required=True)
    type = ma.fields.String(required=True, metadata={"enum": list(TRANSACTION_TYPES)})
    amount = GasAmount(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(TRANSACTION_STATUSES)})
    tx_hash = ma.fields.String(allow_none=True)
    reference = ma.fields.String(allow_none=True)
    block_index = ma.fields.Integer(allow_none=True)
    failure_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class TransactionFilterSchema(PageArgsSchema):
    account_id = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=1, max=2**31 - 1)
    )
    type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(TRANSACTION_TYPES))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(TRANSACTION_STATUSES))
    since = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "Created at or after (ISO 8601 with zone)."}
    )
    until = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "Created before (ISO 8601 with zone)."}
    )
