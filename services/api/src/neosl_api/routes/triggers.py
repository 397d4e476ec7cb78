"""Triggers: what fires functions automatically, and their history; webhook deliveries."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from neosl.errors import InvalidInput
from neosl.models import Trigger, TriggerEvent
from neosl_api import context
from neosl_api.auth import public
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import page_of
from neosl_api.schemas.functions import MAX_INPUT_BYTES, InvokeSchema
from neosl_api.schemas.triggers import (
    EventFilterSchema,
    HookAcceptedSchema,
    TriggerCreatedSchema,
    TriggerCreateSchema,
    TriggerEventSchema,
    TriggerFilterSchema,
    TriggerSchema,
    TriggerUpdateSchema,
)
from neosl_api.services import triggers
from neosl_api.services.triggers import SIGNATURE_HEADER

blp = Blueprint("triggers", __name__, url_prefix="/v1", description="Triggers and their events")

_FIELDS = (
    "id",
    "name",
    "description",
    "function_id",
    "trigger_type",
    "trigger_config",
    "status",
    "next_fire_at",
    "feed_id",
    "state",
    "created_at",
    "updated_at",
)


def view(
    trigger: Trigger, secret: str | None = None, last: dict[int, TriggerEvent] | None = None
) -> dict[str, Any]:
    """A trigger as answered: its webhook URL is on this API's own address, with its latest
    event (``last``: read for a page at once; else read here)."""
    if last is None:
        last = triggers.last_events(context.db(), [trigger.id])
    out = {name: getattr(trigger, name) for name in _FIELDS}
    out["last_event"] = last.get(trigger.id)
    out["webhook_url"] = (
        f"{request.url_root.rstrip('/')}/v1/hooks/{trigger.id}"
        if trigger.trigger_type == "webhook"
        else None
    )
    out["webhook_secret"] = secret
    return out


@blp.route("/triggers", methods=["POST"])
@blp.arguments(TriggerCreateSchema)
@blp.response(201, TriggerCreatedSchema)
@blp.alt_response(404, description="The function is not yours")
@blp.alt_response(409, description="A trigger of this name exists")
@blp.alt_response(422, description="Invalid fields; trigger_config errors name the field")
def create_trigger(body: dict[str, Any]) -> dict[str, Any]:
    """Create a trigger. A webhook trigger's answer holds its signing secret, shown once."""
    spec = triggers.TriggerSpec(
        name=body["name"],
        function_id=body["function_id"],
        trigger_type=body["trigger_type"],
        trigger_config=body["trigger_config"],
        description=body["description"],
    )
    created = triggers.create_trigger(
        context.db(), context.settings(), context.current_user().id, spec
    )
    return view(created.trigger, created.webhook_secret)


@blp.route("/triggers", methods=["GET"])
@blp.arguments(TriggerFilterSchema, location="query")
@blp.response(200, page_of(TriggerSchema))
def list_triggers(args: dict[str, Any]) -> dict[str, Any]:
    """Your triggers, newest first, filtered by type, status and function."""
    f = triggers.TriggerFilter(
        trigger_type=args["type"], status=args["status"], function_id=args["function_id"]
    )
    page = triggers.list_triggers(
        context.db(), context.current_user().id, f, args["limit"], args["cursor"]
    )
    last = triggers.last_events(context.db(), [t.id for t in page.items])
    return {"items": [view(t, last=last) for t in page.items], "next_cursor": page.next_cursor}


@blp.route("/triggers/<int:trigger_id>", methods=["GET"])
@blp.response(200, TriggerSchema)
def get_trigger(trigger_id: int) -> dict[str, Any]:
    """One of your triggers."""
    return view(triggers.get_trigger(context.db(), context.current_user().id, trigger_id))


@blp.route("/triggers/<int:trigger_id>", methods=["PATCH"])
@blp.arguments(TriggerUpdateSchema)
@blp.response(200, TriggerSchema)
@blp.alt_response(409, description="The new name is taken")
def update_trigger(body: dict[str, Any], trigger_id: int) -> dict[str, Any]:
    """Change name, description, function or configuration (the type stays)."""
    return view(
        triggers.update_trigger(
            context.db(), context.settings(), context.current_user().id, trigger_id, body
        )
    )


@blp.route("/triggers/<int:trigger_id>", methods=["DELETE"])
@blp.response(204)
def delete_trigger(trigger_id: int) -> None:
    """Delete a trigger and its events (the executions it started stay)."""
    triggers.delete_trigger(context.db(), context.current_user().id, trigger_id)


@blp.route("/triggers/<int:trigger_id>/pause", methods=["POST"])
@blp.response(200, TriggerSchema)
def pause_trigger(trigger_id: int) -> dict[str, Any]:
    """Stop firing. Causes that arrive meanwhile are recorded as skipped where they reach it
    (deliveries, firing by hand); cron slots and contract events are not looked for."""
    return view(triggers.set_status(context.db(), context.current_user().id, trigger_id, "paused"))


@blp.route("/triggers/<int:trigger_id>/resume", methods=["POST"])
@blp.response(200, TriggerSchema)
def resume_trigger(trigger_id: int) -> dict[str, Any]:
    """Fire again, from now: a cron trigger's next slot is the first one after now."""
    return view(triggers.set_status(context.db(), context.current_user().id, trigger_id, "active"))


@blp.route("/triggers/<int:trigger_id>/rotate-secret", methods=["POST"])
@blp.response(200, TriggerCreatedSchema)
@blp.alt_response(409, description="Not a webhook trigger")
def rotate_secret(trigger_id: int) -> dict[str, Any]:
    """A new signing secret for a webhook trigger, shown once; the old one stops at once."""
    rotated = triggers.rotate_secret(
        context.db(), context.settings(), context.current_user().id, trigger_id
    )
    return view(rotated.trigger, rotated.webhook_secret)


@blp.route("/triggers/<int:trigger_id>/fire", methods=["POST"])
@blp.arguments(InvokeSchema)
@blp.response(202, TriggerEventSchema)
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,150}$"},
            "description": "Names this firing: a retry with the same key answers the first "
            "firing's event and fires nothing.",
        }
    ]
)
def fire_trigger(body: dict[str, Any], trigger_id: int) -> TriggerEvent:
    """Fire now with `input`. The event says `fired` (with its execution), or `skipped` or
    `failed` with the reason."""
    if len(json.dumps(body["input"], separators=(",", ":"))) > MAX_INPUT_BYTES:
        message = f"input is larger than {MAX_INPUT_BYTES // 1024} KB"
        raise InvalidInput(message, {"input": [message]})
    key = triggers.manual_key(request.headers.get("Idempotency-Key"))
    return triggers.fire_manually(
        context.db(),
        context.settings(),
        context.dispatcher(),
        context.current_user().id,
        trigger_id,
        body["input"],
        key,
    )


@blp.route("/triggers/<int:trigger_id>/events", methods=["GET"])
@blp.arguments(EventFilterSchema, location="query")
@blp.response(200, page_of(TriggerEventSchema))
def list_events(args: dict[str, Any], trigger_id: int) -> Page[TriggerEvent]:
    """The trigger's history, newest first: every cause, fired, skipped or failed."""
    return triggers.list_events(
        context.db(),
        context.current_user().id,
        trigger_id,
        args["status"],
        args["limit"],
        args["cursor"],
    )


@blp.route("/hooks/<int:trigger_id>", methods=["POST"])
@blp.response(202, HookAcceptedSchema)
@blp.alt_response(400, description="The body is not UTF-8 JSON, or nested too deep")
@blp.alt_response(401, description="Unknown trigger, bad, stale or replayed signature")
@blp.alt_response(409, description="The trigger or its function is paused")
@blp.alt_response(413, description="The body is over 256 KB")
@blp.alt_response(429, description="Too many deliveries to this trigger")
@blp.doc(
    security=[],
    parameters=[
        {
            "in": "header",
            "name": SIGNATURE_HEADER,
            "required": True,
            "schema": {"type": "string"},
            "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` '
            "with the trigger's secret; valid within 300 s, once.",
        }
    ],
)
@public
def deliver(trigger_id: int) -> Response:
    """Deliver to a webhook trigger (no API key: the signature authenticates). The JSON
    body (≤ 256 KB) is the function's input."""
    event = triggers.deliver(
        context.db(),
        context.settings(),
        context.dispatcher(),
        context.redis(),
        trigger_id,
        request.headers.get(SIGNATURE_HEADER),
        request.get_data(cache=False),
    )
    return context.json_response(
        {"event_id": event.id, "execution_id": event.execution_id, "status": event.status}, 202
    )
