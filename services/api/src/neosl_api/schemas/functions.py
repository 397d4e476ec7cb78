from __future__ import annotations

from typing import Any

import marshmallow as ma

from neosl.models.functions import EXECUTION_STATUSES
from neosl_api.schemas.common import PageArgsSchema, StrictSchema
from neosl_api.schemas.gas import GasAmount
from neosl_api.schemas.onchain import ActionSchema

MAX_SOURCE_BYTES = 256 * 1024
MAX_INPUT_BYTES = 256 * 1024
_SECRET_NAME = r"^[A-Za-z0-9_]{1,100}$"  # noqa: S105 (a name pattern, not a secret)


def _utf8_at_most(limit: int, what: str) -> Any:
    def check(value: str) -> None:
        if len(value.encode("utf-8", "surrogatepass")) > limit:
            raise ma.ValidationError(f"{what} is larger than {limit // 1024} KB.")

    return check


class _FunctionFields(StrictSchema):
    description = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=10_000), load_default=None
    )
    timeout = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=300),
        metadata={"description": "Wall-clock limit of one execution, seconds (1-300)."},
    )
    memory = ma.fields.Integer(
        validate=ma.validate.Range(min=16, max=512),
        metadata={"description": "Memory limit of one execution, MB (16-512)."},
    )
    secrets = ma.fields.List(
        ma.fields.String(validate=ma.validate.Regexp(_SECRET_NAME)),
        validate=ma.validate.Length(max=100),
        metadata={
            "description": "Names of your secrets this function may read (`ctx.secrets`); "
            "a name that does not exist yet is simply absent at run time."
        },
    )


class FunctionCreateSchema(_FunctionFields):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    source_code = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1), _utf8_at_most(MAX_SOURCE_BYTES, "source_code")],
        metadata={"description": "JavaScript defining `function main(input, ctx)` (≤ 256 KB)."},
    )
    timeout = ma.fields.Integer(load_default=30, validate=ma.validate.Range(min=1, max=300))
    memory = ma.fields.Integer(load_default=128, validate=ma.validate.Range(min=16, max=512))
    secrets = ma.fields.List(
        ma.fields.String(validate=ma.validate.Regexp(_SECRET_NAME)),
        load_default=list,
        validate=ma.validate.Length(max=100),
    )


class FunctionUpdateSchema(_FunctionFields):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    source_code = ma.fields.String(
        validate=[ma.validate.Length(min=1), _utf8_at_most(MAX_SOURCE_BYTES, "source_code")]
    )
    status = ma.fields.String(validate=ma.validate.OneOf(("active", "paused")))
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10_000))


class FunctionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True)
    source_code = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["active", "paused"]})
    timeout = ma.fields.Integer(required=True)
    memory = ma.fields.Integer(required=True)
    secrets = ma.fields.List(ma.fields.String(), required=True)
    execution_count = ma.fields.Integer(required=True)
    last_execution = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class FunctionVersionSchema(ma.Schema):
    version = ma.fields.Integer(required=True)
    source_code = ma.fields.String(required=True)
    timeout = ma.fields.Integer(required=True)
    memory = ma.fields.Integer(required=True)
    secrets = ma.fields.List(ma.fields.String(), required=True)
    created_at = ma.fields.DateTime(required=True)


class InvokeSchema(StrictSchema):
    input = ma.fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={"description": "Any JSON (≤ 256 KB): main's first argument."},
    )


class InvokeArgsSchema(StrictSchema):
    wait = ma.fields.Float(
        load_default=0,
        validate=ma.validate.Range(min=0, max=30),
        metadata={"description": "Seconds (≤ 30) to wait for the execution to finish."},
    )


class QueuedSchema(ma.Schema):
    execution_id = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True)


class ExecutionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    function_id = ma.fields.Integer(required=True)
    version = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(EXECUTION_STATUSES)})
    input = ma.fields.Raw(allow_none=True)
    trigger = ma.fields.Raw(allow_none=True)
    result = ma.fields.Raw(allow_none=True)
    error = ma.fields.String(allow_none=True)
    start_time = ma.fields.DateTime(allow_none=True)
    end_time = ma.fields.DateTime(allow_none=True)
    duration = ma.fields.Integer(allow_none=True, metadata={"description": "Milliseconds."})
    charge_status = ma.fields.String(allow_none=True)
    charge_amount = GasAmount(allow_none=True)
    created_at = ma.fields.DateTime(required=True)


class ExecutionDetailSchema(ExecutionSchema):
    actions = ma.fields.List(
        ma.fields.Nested(ActionSchema),
        required=True,
        metadata={"description": "What it asked for on chain with neo.invoke, in order."},
    )


class ExecutionFilterSchema(PageArgsSchema):
    function_id = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=1, max=2**31 - 1)
    )
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(EXECUTION_STATUSES))
    since = ma.fields.AwareDateTime(load_default=None)
    until = ma.fields.AwareDateTime(load_default=None)


class ExecutionLogSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    timestamp = ma.fields.DateTime(required=True)
    level = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
