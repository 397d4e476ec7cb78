"""Trigger configurations: validation per type, and the rules the scheduler applies to them.

Shared by the API (which validates what tenants send) and the scheduler (which reads
stored configurations, already valid, to find cron slots, match contract events and test
price conditions). Errors name the field as ``trigger_config.<field>``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from neosl.errors import InvalidInput
from neosl.neo.stack import JSON, StackError, decode
from neosl.triggers import cron

PAIR = re.compile(r"^[A-Z0-9]{1,10}/[A-Z0-9]{1,10}$")
CONTRACT_HASH = re.compile(r"^0x[0-9a-f]{40}$")
CONDITIONS = ("above", "below")
MAX_DURATION = 7 * 86400
MAX_FILTERS = 8
MAX_ARG_INDEX = 31
MAX_THRESHOLD = Decimal("1e12")


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"trigger_config.{field}: {message}", {f"trigger_config.{field}": [message]}
    )


def _only(config: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise _bad(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed)) or 'none'})")


def validate(
    trigger_type: str, config: object, *, cron_min_interval: float, now: dt.datetime
) -> dict[str, Any]:
    """The configuration in its stored form (normalised), for a trigger of ``trigger_type``.

    Price triggers' ``feed_id`` is checked for form only; whether it names a feed the
    tenant may use is the caller's question.

    Raises:
        InvalidInput: naming the field that is wrong.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidInput(
            "trigger_config must be an object", {"trigger_config": ["Must be an object."]}
        )
    if trigger_type == "cron":
        return _cron(config, cron_min_interval, now)
    if trigger_type == "price":
        return _price(config)
    if trigger_type == "blockchain":
        return _blockchain(config)
    _only(config, set())
    return {}


# -- cron ---------------------------------------------------------------------------------


def _cron(config: dict[str, Any], min_interval: float, now: dt.datetime) -> dict[str, Any]:
    _only(config, {"schedule", "timezone"})
    if "schedule" not in config:
        raise _bad("schedule", "required, e.g. '0 */6 * * *'")
    try:
        schedule = cron.parse(config["schedule"])
        zone_name = config.get("timezone", "UTC")
        zone = cron.zone(zone_name)
        gap = schedule.min_interval(zone, now, count=100)
    except cron.CronError as exc:
        raise _bad(exc.field if exc.field == "timezone" else "schedule", exc.message) from None
    if gap < min_interval:
        raise _bad(
            "schedule",
            f"fires every {gap:g} s; the minimum interval is {min_interval:g} s",
        )
    return {"schedule": schedule.expression, "timezone": str(zone_name)}


@functools.lru_cache(maxsize=4096)
def _schedule(expression: str, zone_name: str) -> tuple[cron.Schedule, dt.tzinfo]:
    return cron.parse(expression), cron.zone(zone_name)


def next_slot(config: dict[str, Any], after: dt.datetime) -> dt.datetime:
    """The first slot of a stored cron configuration strictly after ``after`` (UTC).

    Raises:
        CronError: no slot in the next 29 years.
    """
    return _next_slot(config["schedule"], config.get("timezone", "UTC"), after)


@functools.lru_cache(maxsize=65_536)
def _next_slot(expression: str, zone_name: str, after: dt.datetime) -> dt.datetime:
    # Triggers sharing a schedule share their slots: thousands of "0 * * * *" due at the
    # same minute need the next slot computed once, not once each.
    schedule, zone = _schedule(expression, zone_name)
    return schedule.next_after(after, zone)


# -- price --------------------------------------------------------------------------------


def _price(config: dict[str, Any]) -> dict[str, Any]:
    _only(config, {"asset_pair", "condition", "threshold", "duration", "feed_id"})
    pair = config.get("asset_pair")
    if not isinstance(pair, str) or not PAIR.match(pair.upper()):
        raise _bad("asset_pair", "required, BASE/QUOTE such as NEO/USD")
    condition = config.get("condition")
    if condition not in CONDITIONS:
        raise _bad("condition", "required, 'above' or 'below'")
    threshold = _decimal(config.get("threshold"))
    if threshold is None or not 0 < threshold <= MAX_THRESHOLD:
        raise _bad("threshold", f"required, a number > 0 and ≤ {MAX_THRESHOLD:.0f}")
    duration = config.get("duration", 0)
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise _bad("duration", "seconds, a whole number")
    if not 0 <= duration <= MAX_DURATION:
        raise _bad("duration", f"0-{MAX_DURATION} seconds")
    out: dict[str, Any] = {
        "asset_pair": pair.upper(),
        "condition": condition,
        # Kept as text: the exact value given, compared without floating point.
        "threshold": _plain(threshold),
        "duration": duration,
    }
    feed_id = config.get("feed_id")
    if feed_id is not None:
        if not isinstance(feed_id, int) or isinstance(feed_id, bool) or not 0 < feed_id < 2**31:
            raise _bad("feed_id", "the id of a price feed")
        out["feed_id"] = feed_id
    return out


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def holds(config: dict[str, Any], price: Decimal) -> bool:
    """Whether ``price`` meets the stored condition (strictly above or below)."""
    threshold = Decimal(config["threshold"])
    return price > threshold if config["condition"] == "above" else price < threshold


# -- blockchain ---------------------------------------------------------------------------


def _blockchain(config: dict[str, Any]) -> dict[str, Any]:
    _only(config, {"contract_hash", "event_name", "filters"})
    contract = config.get("contract_hash")
    if not isinstance(contract, str) or not CONTRACT_HASH.match(contract.lower()):
        raise _bad("contract_hash", "required, 0x followed by 40 hex digits")
    event = config.get("event_name")
    if not isinstance(event, str) or not 0 < len(event) <= 100:
        raise _bad("event_name", "required, 1-100 characters, e.g. Transfer")
    out: dict[str, Any] = {"contract_hash": contract.lower(), "event_name": event}
    filters = config.get("filters")
    if filters is not None:
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
            raise _bad("filters", f"a list of at most {MAX_FILTERS} {{index, equals}}")
        checked = []
        for i, item in enumerate(filters):
            if not isinstance(item, dict) or set(item) != {"index", "equals"}:
                raise _bad(f"filters[{i}]", "must be {index, equals}")
            index = item["index"]
            if not isinstance(index, int) or isinstance(index, bool):
                raise _bad(f"filters[{i}].index", "the argument's position, from 0")
            if not 0 <= index <= MAX_ARG_INDEX:
                raise _bad(f"filters[{i}].index", f"0-{MAX_ARG_INDEX}")
            equals = item["equals"]
            if isinstance(equals, float) or (
                equals is not None and not isinstance(equals, str | int | bool)
            ):
                raise _bad(
                    f"filters[{i}].equals",
                    "a string, whole number, boolean or null (an address or hash matches "
                    "a decoded script hash)",
                )
            checked.append({"index": index, "equals": equals})
        out["filters"] = checked
    return out


def event_args(state: Any) -> list[JSON] | None:
    """A notification's arguments decoded to JSON (as ``neo.call``), or None if malformed."""
    try:
        decoded = decode(state)
    except StackError:
        return None
    return decoded if isinstance(decoded, list) else None


def _equal(value: JSON, wanted: object) -> bool:
    if isinstance(value, dict) and "address" in value and isinstance(wanted, str):
        return wanted in (value.get("address"), value.get("hash"))
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    if isinstance(value, str) and isinstance(wanted, int):
        # Integers beyond 2**53 are decoded as digit strings.
        return value == str(wanted)
    return value == wanted


def matches(config: dict[str, Any], contract: str, event_name: str, args: list[JSON]) -> bool:
    """Whether a notification (decoded ``args``) is one the stored configuration asks for."""
    if contract != config["contract_hash"] or event_name != config["event_name"]:
        return False
    for f in config.get("filters") or ():
        index = f["index"]
        if index >= len(args) or not _equal(args[index], f["equals"]):
            return False
    return True
