from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import marshmallow as ma

from neosl_api.schemas.common import PageArgsSchema, StrictSchema


class Price(ma.fields.Field):  # type: ignore[type-arg]
    """A price as an exact decimal string ("12.34500000"); never a JSON number."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update({"type": "string", "example": "12.34500000"})
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format(Decimal(value), "f")


_SOURCES_DOC = (
    "Source names (`GET /v1/price-sources?pair=…`), or `{name, weight}` objects with the "
    "weighted aggregation, or `{url, json_path, headers, name, weight}` of your own. Each "
    "named source must list the pair (a USD pair: or its USDT market, with `usdt_as_usd`); "
    "the feed keeps the market each one reads and the source's symbol of it."
)
_USDT_AS_USD_DOC = (
    "Accept a source's USDT market for a USD pair where it has no USD market (each round "
    "shows the market every source read)."
)


def _deviation(**kwargs: Any) -> ma.fields.Decimal:
    # The column keeps two decimals (NUMERIC(10, 2)): rounded here as PostgreSQL rounds, the
    # value checked (> 0) is the value stored, and 1e-9 is refused instead of stored as 0.
    return ma.fields.Decimal(
        places=2,
        rounding=decimal.ROUND_HALF_UP,
        metadata={
            "description": "Publish when the price moved this many percent (> 0, ≤ 100; "
            "rounded to two decimals)."
        },
        **kwargs,
    )


class _FeedFields(StrictSchema):
    frequency = ma.fields.Integer(
        metadata={"description": "Seconds between rounds (at least the configured minimum)."}
    )
    sources = ma.fields.Raw(metadata={"description": _SOURCES_DOC})
    aggregation = ma.fields.String(
        metadata={"enum": ["median", "mean", "trimmed_mean", "weighted"]}
    )
    deviation = _deviation()
    heartbeat = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Publish at least every this many seconds (≥ frequency)."},
    )
    min_sources = ma.fields.Integer(
        metadata={"description": "Sources needed after failures and outliers to price a round."}
    )
    target = ma.fields.Raw(
        allow_none=True,
        metadata={
            "description": "null: the service's PriceFeed contract; or {contract, method} of "
            "your own contract, called with your signer."
        },
    )
    usdt_as_usd = ma.fields.Boolean(metadata={"description": _USDT_AS_USD_DOC})


class FeedCreateSchema(_FeedFields):
    asset_pair = ma.fields.String(required=True, metadata={"example": "NEO/USD"})
    frequency = ma.fields.Integer(required=True)
    sources = ma.fields.Raw(required=True, metadata={"description": _SOURCES_DOC})
    aggregation = ma.fields.String(load_default="median")
    # None: the default (0.5 %); a Decimal default would show as a string in the schema.
    deviation = _deviation(load_default=None, allow_none=True)
    heartbeat = ma.fields.Integer(load_default=None, allow_none=True)
    min_sources = ma.fields.Integer(load_default=1)
    target = ma.fields.Raw(load_default=None, allow_none=True)
    usdt_as_usd = ma.fields.Boolean(load_default=False, metadata={"description": _USDT_AS_USD_DOC})


class FeedUpdateSchema(_FeedFields):
    asset_pair = ma.fields.String()


class FeedFilterSchema(PageArgsSchema):
    asset_pair = ma.fields.String(load_default=None, validate=ma.validate.Length(max=21))


class FeedSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    asset_pair = ma.fields.String(required=True)
    frequency = ma.fields.Integer(required=True)
    sources = ma.fields.List(ma.fields.Dict(), required=True)
    aggregation = ma.fields.String(required=True)
    deviation = Price(required=True)
    heartbeat = ma.fields.Integer(required=True)
    min_sources = ma.fields.Integer(required=True)
    target = ma.fields.Dict(allow_none=True)
    public = ma.fields.Boolean(required=True)
    usdt_as_usd = ma.fields.Boolean(required=True, metadata={"description": _USDT_AS_USD_DOC})
    status = ma.fields.String(required=True, metadata={"enum": ["active", "paused"]})
    # Why a paused feed is paused: by its owner, or for lack of funds (resumed by itself
    # once the owner's account covers a round).
    paused_reason = ma.fields.String(
        allow_none=True, metadata={"enum": ["owner", "insufficient_funds", None]}
    )
    next_round_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class PriceDataArgsSchema(PageArgsSchema):
    since = ma.fields.AwareDateTime(data_key="from", load_default=None)
    until = ma.fields.AwareDateTime(data_key="to", load_default=None)
    interval = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(("1m", "5m", "1h", "1d")),
        metadata={"description": "Answer OHLC buckets of this width instead of prices."},
    )


class PriceDataSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    timestamp = ma.fields.DateTime(required=True)
    price = Price(required=True)
    sources_used = ma.fields.Integer(required=True)
    source_data = ma.fields.Raw(allow_none=True)


class OhlcSchema(ma.Schema):
    start = ma.fields.DateTime(required=True)
    open = Price(required=True)
    high = Price(required=True)
    low = Price(required=True)
    close = Price(required=True)
    rounds = ma.fields.Integer(required=True)


class PublicationActionSchema(ma.Schema):
    """The on-chain action publishing a round (also listed by ``GET /v1/neo/actions``)."""

    id = ma.fields.Integer(required=True)
    status = ma.fields.String(
        required=True, metadata={"enum": ["queued", "pending", "confirmed", "failed"]}
    )
    contract = ma.fields.String(required=True)
    method = ma.fields.String(required=True)
    tx_hash = ma.fields.String(allow_none=True)
    block_index = ma.fields.Integer(allow_none=True)
    fee_charged = ma.fields.Decimal(as_string=True, allow_none=True)
    failure_reason = ma.fields.String(allow_none=True)


class AttemptSchema(ma.Schema):
    """A priced round and what it did about publishing."""

    id = ma.fields.Integer(required=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    price = Price(allow_none=True)
    publication = ma.fields.String(
        allow_none=True,
        metadata={
            "enum": ["not_due", "queued", "skipped", "unpaid", None],
            "description": "What the priced round did about publishing: not_due (within the "
            "deviation, heartbeat not reached), queued (see action), skipped (an earlier "
            "publication in flight, or nowhere to publish), unpaid (the balance cannot pay).",
        },
    )
    publication_reason = ma.fields.String(allow_none=True)
    action = ma.fields.Nested(PublicationActionSchema, allow_none=True)


class RoundSchema(AttemptSchema):
    scheduled_at = ma.fields.DateTime(required=True)
    started_at = ma.fields.DateTime(required=True)
    status = ma.fields.String(
        required=True,
        metadata={
            "enum": ["queued", "running", "priced", "failed"],
            "description": "queued (waiting for a pricefeed worker), running, priced, or "
            "failed (see reason)",
        },
    )
    reason = ma.fields.String(allow_none=True)
    sources_used = ma.fields.Integer(allow_none=True)
    source_data = ma.fields.Raw(required=True)


class PublishedSchema(ma.Schema):
    """The feed's last round on chain: its transaction HALTed."""

    round_id = ma.fields.Integer(required=True)
    price = Price(required=True)
    timestamp = ma.fields.DateTime(required=True, metadata={"description": "the price's time"})
    contract = ma.fields.String(required=True)
    key = ma.fields.String(
        allow_none=True, metadata={"description": "the key in the PriceFeed contract"}
    )
    tx_hash = ma.fields.String(required=True)
    block_index = ma.fields.Integer(allow_none=True)


class PublishingSchema(ma.Schema):
    last_published = ma.fields.Nested(PublishedSchema, allow_none=True)
    last_attempt = ma.fields.Nested(
        AttemptSchema,
        allow_none=True,
        metadata={"description": "the newest round that was due to publish, and what came of it"},
    )


class FeedDetailSchema(FeedSchema):
    publishing = ma.fields.Nested(PublishingSchema, required=True)


class LatestSchema(ma.Schema):
    feed_id = ma.fields.Integer(required=True)
    price = ma.fields.Nested(PriceDataSchema, allow_none=True)
    round = ma.fields.Nested(RoundSchema, allow_none=True)
    published = ma.fields.Nested(PublishedSchema, allow_none=True)


class ReportSchema(ma.Schema):
    feed_id = ma.fields.Integer(required=True)
    pair = ma.fields.String(required=True)
    price = ma.fields.String(
        required=True, metadata={"description": "An integer: the price times 10**decimals."}
    )
    decimals = ma.fields.Integer(required=True)
    round_id = ma.fields.Integer(required=True)
    timestamp = ma.fields.Integer(
        required=True, metadata={"description": "When the round was priced, Unix milliseconds."}
    )
    sources_used = ma.fields.Integer(required=True)
    report = ma.fields.String(
        required=True,
        metadata={
            "description": "The report's bytes, hex: Neo's binary serialization of "
            "[version, feed_id, pair, price, decimals, round_id, timestamp, sources_used], "
            "what StdLib.deserialize reads."
        },
    )
    signature = ma.fields.String(
        required=True,
        metadata={
            "description": "r‖s, hex: ECDSA secp256r1 over SHA-256 of the report "
            "(CryptoLib.verifyWithECDsa with curve hash 23)."
        },
    )
    key_id = ma.fields.String(required=True)
    public_key = ma.fields.String(
        required=True, metadata={"description": "The signing key, compressed, hex."}
    )


class SourceSchema(ma.Schema):
    name = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    markets = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "How many markets the source's stored list has; null while none "
            "is stored (then `bases` and `quotes` apply)."
        },
    )
    listed_at = ma.fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When the list was fetched."}
    )
    listing_error = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Why the last attempt to fetch the list failed, if it did."},
    )
    market = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "With `?pair=`: the market the source reads for it (the pair, or "
            "BASE/USDT for a USD pair); null without."
        },
    )
    symbol = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "With `?pair=`: the source's name of that market (null where the "
            "built-in catalog applies)."
        },
    )
    bases = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "The base assets served while no market list is stored."},
    )
    quotes = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={
            "description": "While no market list is stored: the quote a feed names → the "
            "market the source reads."
        },
    )


class SourceArgsSchema(StrictSchema):
    pair = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=21),
        metadata={"description": "Only the sources that price this pair (BASE/QUOTE)."},
    )
    usdt_as_usd = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "With `pair`: count USDT markets for a USD pair."},
    )
