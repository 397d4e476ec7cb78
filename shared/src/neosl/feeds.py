"""Price feed definitions: validation of every field (together), and creation.

Shared by the API and the operator's CLI (``neosl feeds create --public``). Errors name the
field (``sources[2]``, ``heartbeat``…).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from neosl import pricesources
from neosl.config import Settings
from neosl.errors import InvalidInput
from neosl.models import PriceFeed
from neosl.triggers import CONTRACT_HASH, PAIR

AGGREGATIONS = ("median", "mean", "trimmed_mean", "weighted")
MAX_FREQUENCY = 86_400
MAX_HEARTBEAT = 7 * 86_400
MAX_SOURCES = 16
MAX_DEVIATION = Decimal(100)
MAX_WEIGHT = Decimal(1000)
DEFAULT_DEVIATION = Decimal("0.5")


@dataclass(frozen=True)
class FeedSpec:
    asset_pair: str
    frequency: int
    sources: Any
    aggregation: str = "median"
    deviation: Decimal | None = None
    heartbeat: int | None = None
    min_sources: int = 1
    target: Any = None
    public: bool = False


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", {field: [message]})


def normal_pair(value: object) -> str:
    """``value`` as a pair in upper case.

    Raises:
        InvalidInput: not BASE/QUOTE.
    """
    if not isinstance(value, str) or not PAIR.match(value.upper()):
        raise _bad("asset_pair", "BASE/QUOTE such as NEO/USD")
    return value.upper()


def _weight(value: object, field: str) -> Decimal:
    try:
        weight = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        weight = None
    if weight is None or not weight.is_finite() or not 0 < weight <= MAX_WEIGHT:
        raise _bad(field, f"a number > 0 and ≤ {MAX_WEIGHT}")
    return weight


def _sources(value: object, pair: str, aggregation: str) -> list[dict[str, str]]:
    """``[{"name", "weight"}]``: known sources, each serving ``pair``, each once.

    Raises:
        InvalidInput: naming ``sources`` or ``sources[i]``.
    """
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SOURCES:
        raise _bad("sources", f"a list of 1-{MAX_SOURCES} source names or {{name, weight}}")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        field = f"sources[{i}]"
        if isinstance(item, str):
            name, weight = item, None
        elif isinstance(item, dict) and set(item) <= {"name", "weight"} and "name" in item:
            name, weight = item["name"], item.get("weight")
        else:
            raise _bad(field, "a source name or {name, weight}")
        if not isinstance(name, str) or name not in pricesources.NAMES:
            known = ", ".join(pricesources.NAMES)
            raise _bad(field, f"unknown source {str(name)[:40]!r} (known: {known})")
        if name in seen:
            raise _bad(field, f"{name} is listed twice")
        seen.add(name)
        if not pricesources.serves(name, pair):
            raise _bad(field, f"{name} does not serve {pair} (GET /v1/price-sources)")
        if aggregation == "weighted":
            if weight is None:
                raise _bad(f"{field}.weight", "required by the weighted aggregation")
            out.append({"name": name, "weight": str(_weight(weight, f"{field}.weight"))})
        else:
            if weight is not None:
                raise _bad(f"{field}.weight", "only the weighted aggregation takes weights")
            out.append({"name": name})
    return out


def _target(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"contract", "method"}:
        raise _bad("target", "null (the service's PriceFeed contract) or {contract, method}")
    contract, method = value["contract"], value["method"]
    if not isinstance(contract, str) or not CONTRACT_HASH.match(contract.lower()):
        raise _bad("target.contract", "0x followed by 40 hex digits")
    if not isinstance(method, str) or not 0 < len(method) <= 100:
        raise _bad("target.method", "the method's name, 1-100 characters")
    return {"contract": contract.lower(), "method": method}


def validated(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """Every field of a feed, checked together (heartbeat against frequency, weights
    against the aggregation, min_sources against the sources).

    Raises:
        InvalidInput: naming the field.
    """
    pair = normal_pair(fields["asset_pair"])
    frequency = fields["frequency"]
    if not settings.pricefeed_min_frequency <= frequency <= MAX_FREQUENCY:
        raise _bad(
            "frequency",
            f"seconds between rounds, {settings.pricefeed_min_frequency}-{MAX_FREQUENCY}",
        )
    aggregation = fields["aggregation"]
    if aggregation not in AGGREGATIONS:
        raise _bad("aggregation", f"one of {', '.join(AGGREGATIONS)}")
    sources = _sources(fields["sources"], pair, aggregation)
    deviation = fields["deviation"] if fields["deviation"] is not None else DEFAULT_DEVIATION
    if not 0 < deviation <= MAX_DEVIATION:
        raise _bad("deviation", "percent, > 0 and ≤ 100")
    heartbeat = fields["heartbeat"] if fields["heartbeat"] is not None else max(3600, frequency)
    if not frequency <= heartbeat <= MAX_HEARTBEAT:
        raise _bad("heartbeat", f"seconds, at least the frequency ({frequency}), ≤ {MAX_HEARTBEAT}")
    min_sources = fields["min_sources"]
    if not 1 <= min_sources <= len(sources):
        raise _bad("min_sources", f"1 to the number of sources ({len(sources)})")
    return {
        "asset_pair": pair,
        "frequency": frequency,
        "sources": sources,
        "aggregation": aggregation,
        "deviation": deviation,
        "heartbeat": heartbeat,
        "min_sources": min_sources,
        "target": _target(fields["target"]),
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_feed(session: Session, settings: Settings, user_id: int, spec: FeedSpec) -> PriceFeed:
    """A new feed, active: its first round is due now.

    Raises:
        InvalidInput: naming the field.
    """
    fields = validated(settings, spec.__dict__)
    feed = PriceFeed(
        user_id=user_id, status="active", public=spec.public, next_round_at=_now(), **fields
    )
    session.add(feed)
    session.commit()
    return feed
