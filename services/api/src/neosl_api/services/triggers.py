"""Triggers: create, change, pause and resume, fire by hand, webhook deliveries, history.

Validation of configurations lives in ``neosl.triggers.rules`` (the scheduler reads them too); the
firing itself in ``neosl.triggers.firing`` (one path for every type). Here: what each type needs set
up when it is created, changed or resumed (a cron trigger's next slot, a price trigger's
feed and state, a webhook's secret), and the webhook's signature check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import Select, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServiceError,
    Unauthorized,
)
from neosl.functions import secretbox
from neosl.models import Function, PriceData, PriceFeed, Trigger, TriggerEvent
from neosl.triggers import firing, rules
from neosl_api import jsonbody
from neosl_api.pagination import Page, paginate
from neosl_api.services import ratelimit
from neosl_api.tenancy import TenantLock, get_owned, id_limit, lock_tenant, owned_by

# A delivery's signature is valid this long around its timestamp.
SIGNATURE_TOLERANCE_SECONDS = 300
MAX_HOOK_BODY_BYTES = 256 * 1024
SIGNATURE_HEADER = "X-NSL-Signature"
_SIGNATURE_PART = re.compile(r"^(t|v1)=([0-9a-fA-F]{1,128}|[0-9]{1,12})$")
# The same answer for an unknown trigger, a missing header and a wrong signature: ids and
# secrets cannot be probed.
_REFUSED = "invalid or missing webhook signature"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    function_id: int
    trigger_type: str
    trigger_config: Any
    description: str | None = None


@dataclass(frozen=True)
class Created:
    trigger: Trigger
    # A webhook trigger's signing secret, answered once (on creation and rotation).
    webhook_secret: str | None = None


@dataclass(frozen=True)
class TriggerFilter:
    trigger_type: str | None = None
    status: str | None = None
    function_id: int | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name_taken() -> Conflict:
    return Conflict("a trigger with this name exists", {"name": ["Already used by a trigger."]})


def _validated(settings: Settings, trigger_type: str, config: Any) -> dict[str, Any]:
    return rules.validate(
        trigger_type, config, cron_min_interval=settings.cron_min_interval, now=_now()
    )


def _resolve_feed(session: Session, user_id: int, config: dict[str, Any]) -> int:
    """The feed a price trigger watches: ``feed_id`` if given (the tenant's own or a public
    one, of that pair), else the tenant's own feed of the pair, else a public one.

    Raises:
        InvalidInput: naming ``feed_id`` or ``asset_pair``.
    """
    pair = config["asset_pair"]
    usable = or_(PriceFeed.user_id == user_id, PriceFeed.public)
    feed_id = config.get("feed_id")
    if feed_id is not None:
        feed = session.scalars(
            select(PriceFeed).where(PriceFeed.id == feed_id, usable)
        ).one_or_none()
        if feed is None:
            raise InvalidInput(
                f"trigger_config.feed_id: price feed {feed_id} not found",
                {"trigger_config.feed_id": ["No such price feed of yours or public."]},
            )
        if feed.asset_pair.upper() != pair:
            message = f"feed {feed_id} prices {feed.asset_pair}, not {pair}"
            raise InvalidInput(
                f"trigger_config.feed_id: {message}", {"trigger_config.feed_id": [message]}
            )
        return feed.id
    # The tenant's own feed first (newest), else the oldest public one.
    found = session.scalar(
        select(PriceFeed.id)
        .where(func.upper(PriceFeed.asset_pair) == pair, usable)
        .order_by((PriceFeed.user_id == user_id).desc(), PriceFeed.public.desc(), PriceFeed.id)
        .limit(1)
    )
    if found is None:
        message = f"no price feed of yours or public prices {pair}; create one or name feed_id"
        raise InvalidInput(
            f"trigger_config.asset_pair: {message}", {"trigger_config.asset_pair": [message]}
        )
    return int(found)


def _arm(session: Session, trigger: Trigger) -> None:
    """Set up what the scheduler needs of an active trigger (after create, change, resume)."""
    now = _now()
    if trigger.trigger_type == "cron":
        trigger.next_fire_at = rules.next_slot(trigger.trigger_config, now)
    elif trigger.trigger_type == "price":
        # Evaluation starts with the first price after this moment.
        last_id = session.scalar(
            select(func.max(PriceData.id)).where(PriceData.feed_id == trigger.feed_id)
        )
        trigger.state = {"armed": True, "since": None, "last_id": int(last_id or 0)}


def _new_hook_secret(settings: Settings, trigger: Trigger) -> str:
    secret = "whsec_" + secrets.token_hex(32)
    trigger.hook_version += 1
    sealed = secretbox.seal(
        settings.secrets_keys,
        trigger.user_id,
        secretbox.webhook_secret_name(trigger.id),
        trigger.hook_version,
        secret,
    )
    trigger.hook_secret = sealed.value
    trigger.hook_wrapped_key = sealed.wrapped_key
    trigger.hook_master_key_id = sealed.master_key_id
    return secret


def create_trigger(
    session: Session, settings: Settings, user_id: int, spec: TriggerSpec
) -> Created:
    """Raises:
    NotFound: the function is not the tenant's.
    InvalidInput: the configuration (naming its field).
    Conflict: the tenant has a trigger of this name, or as many triggers as allowed.
    """
    get_owned(session, Function, spec.function_id, user_id)
    config = _validated(settings, spec.trigger_type, spec.trigger_config)
    # Held until the commit: concurrent creates count one after the other, never past the cap.
    lock_tenant(session, user_id, TenantLock.TRIGGERS)
    count = session.scalar(select(func.count()).where(Trigger.user_id == user_id)) or 0
    if count >= settings.triggers_per_tenant:
        raise Conflict(
            f"you have {count} triggers, the most allowed (NSL_TRIGGERS_PER_TENANT); "
            "delete some first",
            {"name": [f"At most {settings.triggers_per_tenant} triggers per tenant."]},
        )
    trigger = Trigger(
        user_id=user_id,
        function_id=spec.function_id,
        name=spec.name,
        description=spec.description,
        trigger_type=spec.trigger_type,
        trigger_config=config,
        status="active",
        state={},
        hook_version=0,
    )
    if spec.trigger_type == "price":
        trigger.feed_id = _resolve_feed(session, user_id, config)
    _arm(session, trigger)
    session.add(trigger)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _name_taken() from None
    secret = _new_hook_secret(settings, trigger) if spec.trigger_type == "webhook" else None
    session.commit()
    return Created(trigger, secret)


def list_triggers(
    session: Session, user_id: int, f: TriggerFilter, limit: int, cursor: str | None
) -> Page[Trigger]:
    stmt: Select[Trigger] = owned_by(Trigger, user_id)
    if f.trigger_type is not None:
        stmt = stmt.where(Trigger.trigger_type == f.trigger_type)
    if f.status is not None:
        stmt = stmt.where(Trigger.status == f.status)
    if f.function_id is not None:
        stmt = stmt.where(Trigger.function_id == f.function_id)
    return paginate(session, stmt, Trigger.id, limit=limit, cursor=cursor)


def last_events(session: Session, trigger_ids: list[int]) -> dict[int, TriggerEvent]:
    """Each trigger's latest event (one statement for a page of triggers): why a trigger
    did or did not run, without reading its events."""
    if not trigger_ids:
        return {}
    rows = session.scalars(
        select(TriggerEvent)
        .where(TriggerEvent.trigger_id.in_(trigger_ids))
        .ext(distinct_on(TriggerEvent.trigger_id))
        .order_by(TriggerEvent.trigger_id, TriggerEvent.id.desc())
    ).all()
    return {event.trigger_id: event for event in rows}


def get_trigger(session: Session, user_id: int, trigger_id: int) -> Trigger:
    return get_owned(session, Trigger, trigger_id, user_id)


def update_trigger(
    session: Session, settings: Settings, user_id: int, trigger_id: int, changes: dict[str, Any]
) -> Trigger:
    """Change name, description, function or configuration (its type stays).

    Raises:
        NotFound: no such trigger, or the new function is not the tenant's.
        InvalidInput: the configuration.
        Conflict: the new name is taken.
    """
    trigger = get_owned(session, Trigger, trigger_id, user_id, for_update=True)
    if "function_id" in changes:
        get_owned(session, Function, changes["function_id"], user_id)
        trigger.function_id = changes["function_id"]
    for name in ("name", "description"):
        if name in changes:
            setattr(trigger, name, changes[name])
    if "trigger_config" in changes:
        config = _validated(settings, trigger.trigger_type, changes["trigger_config"])
        trigger.trigger_config = config
        if trigger.trigger_type == "price":
            trigger.feed_id = _resolve_feed(session, user_id, config)
        _arm(session, trigger)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _name_taken() from None
    session.commit()
    return trigger


def delete_trigger(session: Session, user_id: int, trigger_id: int) -> None:
    """Delete a trigger and its history (its executions stay)."""
    session.delete(get_owned(session, Trigger, trigger_id, user_id))
    session.commit()


def set_status(session: Session, user_id: int, trigger_id: int, status: str) -> Trigger:
    """Pause or resume. Resuming starts afresh: a cron trigger's next slot is the first one
    from now (slots while paused are neither fired nor recorded), a price trigger re-arms."""
    trigger = get_owned(session, Trigger, trigger_id, user_id, for_update=True)
    if trigger.status != status:
        trigger.status = status
        if status == "active":
            _arm(session, trigger)
    session.commit()
    return trigger


def rotate_secret(session: Session, settings: Settings, user_id: int, trigger_id: int) -> Created:
    """A new signing secret for a webhook trigger; the old one stops working at once.

    Raises:
        NotFound: no such trigger.
        Conflict: not a webhook trigger.
    """
    trigger = get_owned(session, Trigger, trigger_id, user_id, for_update=True)
    if trigger.trigger_type != "webhook":
        raise Conflict(f"trigger {trigger_id} is a {trigger.trigger_type} trigger, not a webhook")
    secret = _new_hook_secret(settings, trigger)
    session.commit()
    return Created(trigger, secret)


_MANUAL_KEY = re.compile(r"^[\x21-\x7e]{1,150}$")


def manual_key(header: str | None) -> str | None:
    """An Idempotency-Key naming a firing by hand, if given.

    Raises:
        InvalidInput: not 1-150 visible ASCII characters.
    """
    if header is None:
        return None
    if not _MANUAL_KEY.match(header):
        message = "1-150 visible ASCII characters"
        raise InvalidInput(f"Idempotency-Key: {message}", {"Idempotency-Key": [message]})
    return header


def fire_manually(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    user_id: int,
    trigger_id: int,
    input_: Any,
    key: str | None,
) -> TriggerEvent:
    """Fire now with ``input_``. With an idempotency ``key``, a retry answers the first
    firing's event instead of firing again.

    Raises:
        NotFound: no such trigger.
    """
    trigger = get_owned(session, Trigger, trigger_id, user_id)
    cause_key = f"manual:{key or uuid.uuid4().hex}"
    detail = {"type": "manual", "trigger_id": trigger.id, "trigger_type": trigger.trigger_type}
    firing.fire(
        session,
        settings,
        dispatcher,
        [
            firing.Cause(
                trigger.id, cause_key, detail=detail, input=input_, use_detail_as_input=False
            )
        ],
    )
    session.commit()
    return _event(session, trigger.id, cause_key)


def _event(session: Session, trigger_id: int, cause_key: str) -> TriggerEvent:
    event = session.scalars(
        select(TriggerEvent).where(
            TriggerEvent.trigger_id == trigger_id, TriggerEvent.cause_key == cause_key
        )
    ).one_or_none()
    if event is None:
        # The trigger was deleted meanwhile.
        raise NotFound(f"trigger {trigger_id} not found")
    return event


def list_events(
    session: Session,
    user_id: int,
    trigger_id: int,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[TriggerEvent]:
    get_owned(session, Trigger, trigger_id, user_id)
    stmt = select(TriggerEvent).where(TriggerEvent.trigger_id == trigger_id)
    if status is not None:
        stmt = stmt.where(TriggerEvent.status == status)
    return paginate(session, stmt, TriggerEvent.id, limit=limit, cursor=cursor)


# -- webhooks -------------------------------------------------------------------------------


def _signature(header: str | None) -> tuple[int, list[str]]:
    """``t`` and the ``v1`` values of ``X-NSL-Signature: t=<unix seconds>,v1=<hex>[,v1=…]``.

    Raises:
        Unauthorized: missing or malformed.
    """
    if not header or len(header) > 1024:
        raise Unauthorized(_REFUSED)
    stamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        match = _SIGNATURE_PART.match(part.strip())
        if match is None:
            continue  # unknown schemes are ignored, as a later version may add some
        name, value = match.groups()
        if name == "t" and value.isdigit():
            stamp = int(value)
        elif name == "v1" and len(value) == 64:
            macs.append(value.lower())
    if stamp is None or not macs:
        raise Unauthorized(_REFUSED)
    return stamp, macs


def sign(secret: str, stamp: int, body: bytes) -> str:
    """The ``v1`` signature of ``body`` sent at ``stamp`` (what senders compute)."""
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def deliver(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    redis: Redis,
    trigger_id: int,
    header: str | None,
    body: bytes,
) -> TriggerEvent:
    """Fire a webhook trigger for a signed delivery; answers the event (status ``fired``).

    Raises:
        PayloadTooLarge: the body is over 256 KB.
        Unauthorized: no such webhook trigger, a missing, malformed or wrong signature, a
            timestamp more than 300 s from now, or a signature used before (a replay).
        RateLimited: too many deliveries to this trigger this minute.
        MalformedBody: the body is not UTF-8, not JSON, or nested too deep (400).
        InvalidInput: a string in the body that cannot be stored (``jsonbody.loads``).
        Conflict: the trigger or its function is paused (recorded as skipped).
        PaymentRequired: the tenant cannot cover the execution's hold (recorded as skipped,
            reason ``insufficient_funds: …``).
    """
    if len(body) > MAX_HOOK_BODY_BYTES:
        raise PayloadTooLarge(f"a webhook body is at most {MAX_HOOK_BODY_BYTES // 1024} KB")
    stamp, macs = _signature(header)
    trigger = None
    if 0 < trigger_id <= id_limit(Trigger.id):
        trigger = session.get(Trigger, trigger_id)
    if trigger is None or trigger.trigger_type != "webhook" or trigger.hook_secret is None:
        raise Unauthorized(_REFUSED)
    secret = secretbox.open_(
        settings.secrets_keys,
        trigger.user_id,
        secretbox.webhook_secret_name(trigger.id),
        trigger.hook_version,
        trigger.hook_secret,
        trigger.hook_wrapped_key or "",
        trigger.hook_master_key_id or "",
    )
    expected = sign(secret, stamp, body)
    matched = [mac for mac in macs if hmac.compare_digest(mac, expected)]
    if not matched:
        raise Unauthorized(_REFUSED)
    # The signature is genuine: from here on, messages may say what is wrong.
    if abs(_now().timestamp() - stamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthorized(
            f"the signature's timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s from now"
        )
    wait = ratelimit.hit(redis, f"nsl:hook:{trigger.id}", settings.webhook_rate_limit, 60)
    if wait is not None:
        raise RateLimited(f"too many deliveries to trigger {trigger.id}; retry later", wait)
    payload = jsonbody.loads(body) if body.strip() else None
    cause_key = f"hook:{matched[0]}"
    detail = {"type": "webhook", "trigger_id": trigger.id, "timestamp": stamp}
    (outcome,) = firing.fire(
        session,
        settings,
        dispatcher,
        [
            firing.Cause(
                trigger.id, cause_key, detail=detail, input=payload, use_detail_as_input=False
            )
        ],
    )
    session.commit()
    if not outcome.new:
        raise Unauthorized("this signature was used before (a replay)")
    event = _event(session, trigger.id, cause_key)
    if event.status == "skipped" and firing.unpaid(event.reason):
        raise PaymentRequired(f"{event.reason}; the delivery was recorded as skipped")
    if event.status == "skipped":
        raise Conflict(f"{event.reason}; the delivery was recorded as skipped")
    return event
