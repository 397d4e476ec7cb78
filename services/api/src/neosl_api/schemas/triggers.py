from __future__ import annotations

from typing import Any

import marshmallow as ma

from neosl.models.triggers import EVENT_STATUSES, TRIGGER_STATUSES, TRIGGER_TYPES
from neosl_api.schemas.common import PageArgsSchema, StrictSchema

_ID = ma.validate.Range(min=1, max=2**31 - 1)
_CONFIG_DOC = (
    "Per type. cron: `{schedule, timezone}` (5 fields, or 6 with seconds; IANA zone, default "
    "UTC). price: `{asset_pair, condition: above|below, threshold, duration, feed_id?}`. "
    "blockchain: `{contract_hash, event_name, filters?: [{index, equals}]}`. webhook: `{}`."
)


class TriggerCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    function_id = ma.fields.Integer(required=True, validate=_ID)
    trigger_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRIGGER_TYPES))
    trigger_config = ma.fields.Raw(load_default=None, metadata={"description": _CONFIG_DOC})
    description = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=10_000), load_default=None
    )


class TriggerUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    function_id = ma.fields.Integer(validate=_ID)
    trigger_config = ma.fields.Raw(metadata={"description": _CONFIG_DOC})
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10_000))


class TriggerFilterSchema(PageArgsSchema):
    type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(TRIGGER_TYPES))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(TRIGGER_STATUSES))
    function_id = ma.fields.Integer(load_default=None, validate=_ID)


class EventFilterSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(EVENT_STATUSES))


class TriggerEventSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    trigger_id = ma.fields.Integer(required=True)
    timestamp = ma.fields.DateTime(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(EVENT_STATUSES)})
    reason = ma.fields.String(allow_none=True)
    execution_id = ma.fields.Integer(allow_none=True)
    cause_key = ma.fields.String(required=True)
    cause = ma.fields.Dict(required=True)


class TriggerSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True)
    function_id = ma.fields.Integer(required=True)
    trigger_type = ma.fields.String(required=True, metadata={"enum": list(TRIGGER_TYPES)})
    trigger_config = ma.fields.Dict(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(TRIGGER_STATUSES)})
    next_fire_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "cron: the next slot (UTC)."}
    )
    feed_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "price: the feed the pair resolved to."}
    )
    price_state = ma.fields.Method(
        "_price_state",
        allow_none=True,
        metadata={"description": "price: `{armed, since}`: since when the condition holds."},
    )
    webhook_url = ma.fields.String(
        allow_none=True, metadata={"description": "webhook: where to POST deliveries."}
    )
    last_event = ma.fields.Nested(
        TriggerEventSchema,
        allow_none=True,
        metadata={
            "description": "The latest event: when the trigger last fired, or why it did not "
            "(`skipped` with its reason, e.g. `insufficient_funds: …`); null before the first."
        },
    )
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)

    def _price_state(self, trigger: Any) -> dict[str, Any] | None:
        if trigger["trigger_type"] != "price":
            return None
        state = trigger["state"] or {}
        return {"armed": state.get("armed", True), "since": state.get("since")}


class TriggerCreatedSchema(TriggerSchema):
    webhook_secret = ma.fields.String(
        allow_none=True,
        metadata={"description": "webhook: the signing secret, shown only in this answer."},
    )


class HookAcceptedSchema(ma.Schema):
    event_id = ma.fields.Integer(required=True)
    execution_id = ma.fields.Integer(allow_none=True)
    status = ma.fields.String(required=True)
