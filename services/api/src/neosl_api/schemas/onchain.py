from __future__ import annotations

import marshmallow as ma

from neosl.models.neo import ACTION_STATUSES
from neosl_api.schemas.common import PageArgsSchema, StrictSchema
from neosl_api.schemas.gas import GasAmount


class SignerSchema(ma.Schema):
    address = ma.fields.String(required=True)
    script_hash = ma.fields.String(
        required=True, metadata={"description": "0x + 40 hex digits, as Neo shows hashes."}
    )
    public_key = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


class ActionCreateSchema(StrictSchema):
    contract = ma.fields.String(
        required=True, metadata={"description": "The contract's script hash: 0x + 40 hex."}
    )
    method = ma.fields.String(required=True)
    args = ma.fields.List(
        ma.fields.Raw(allow_none=True),
        load_default=list,
        metadata={
            "description": "Plain JSON values, or typed values "
            '{"$neo": "Hash160" | "Hash256" | "ByteArray" | "Integer" | "PublicKey" | '
            '"String", "value": ...} (see the README, "On-chain actions").'
        },
    )


class ActionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    execution_id = ma.fields.Integer(allow_none=True)
    position = ma.fields.Integer(allow_none=True)
    price_round_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "the price feed round it publishes"}
    )
    charge_type = ma.fields.String(required=True, metadata={"enum": ["function", "pricefeed"]})
    contract = ma.fields.String(required=True)
    method = ma.fields.String(required=True)
    args = ma.fields.Raw(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(ACTION_STATUSES)})
    failure_reason = ma.fields.String(allow_none=True)
    vm_state = ma.fields.String(allow_none=True)
    tx_hash = ma.fields.String(allow_none=True)
    block_index = ma.fields.Integer(allow_none=True)
    system_fee = GasAmount(allow_none=True)
    network_fee = GasAmount(allow_none=True)
    gas_consumed = GasAmount(allow_none=True)
    service_fee = GasAmount(allow_none=True)
    fee_charged = GasAmount(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    settled_at = ma.fields.DateTime(allow_none=True)


class ActionFilterSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(ACTION_STATUSES))
    execution_id = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=1, max=2**63 - 1)
    )
    since = ma.fields.AwareDateTime(load_default=None)
    until = ma.fields.AwareDateTime(load_default=None)
