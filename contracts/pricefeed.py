"""PriceFeed: the latest price of each of the service's price feeds, written by its publisher,
and the check of the service's signed price reports.

Pushed prices: a feed's key is its id in the service (``"feed:<id>"``): ids are unique across
tenants, so keys never collide. Each entry keeps the price in fixed point with 8 decimals (an
integer: 12.34 is 1234000000), the round's timestamp (milliseconds since the epoch) and the
round's id; an update older than the stored one (by round id) is refused, so a late or
replayed transaction cannot put an older price back. Only the publisher, fixed when the
contract is deployed (from the deploy data, or the deploying transaction's sender), may update.

Signed reports: anyone may bring a report the service signed (its bytes and signature) to
``verify``, which checks the signature against the report public key held here, that the
report is of the feed the caller asked for, fresh against the block time and newer than the
last report accepted for that feed; then it keeps the report's price and returns it. The
caller pays the GAS. The publisher sets the key (rotation) and the freshness bound.

Compiled with neo3-boa (``make contracts``); see README.md next to this file.
"""

from typing import Any

from boa3.sc import runtime, storage
from boa3.sc.compiletime import NeoMetadata, public
from boa3.sc.contracts import CryptoLib, StdLib
from boa3.sc.types import ECPoint, NamedCurveHash, UInt160
from boa3.sc.utils import CreateNewEvent, abort, to_bytes

PUBLISHER_KEY = b"publisher"
PRICE_PREFIX = b"price:"
TIME_PREFIX = b"time:"
ROUND_PREFIX = b"round:"

REPORT_KEY = b"report_key"
MAX_AGE_KEY = b"max_report_age"
# The last accepted report of each feed, by feed id; apart from the pushed prices above.
VERIFIED_PRICE_PREFIX = b"verified_price:"
VERIFIED_TIME_PREFIX = b"verified_time:"
VERIFIED_ROUND_PREFIX = b"verified_round:"

REPORT_VERSION = 1
REPORT_DECIMALS = 8
REPORT_FIELDS = 8
DEFAULT_MAX_REPORT_AGE = 60_000  # ms
LONGEST_MAX_REPORT_AGE = 86_400_000  # ms: one day

NOT_PUBLISHER = "only the publisher can update"
STALE = "a newer round is stored"
BAD_DEPLOY_DATA = (
    "deploy data must be the publisher's Hash160, null or [publisher, report public key]"
)
BAD_KEY = "a report key is a 33-byte compressed secp256r1 public key"
NO_REPORT_KEY = "no report key is set"
BAD_SIGNATURE = "bad signature"
BAD_REPORT = "not a version 1 report with 8 decimals"
OTHER_FEED = "report is for another feed"
STALE_REPORT = "stale report"
OLD_REPORT = "report replayed or older than the last accepted"

# PriceUpdated(key, price, timestamp, round): a feed's latest price was written.
on_price_updated = CreateNewEvent(
    [("key", str), ("price", int), ("timestamp", int), ("round", int)], "PriceUpdated"
)
# ReportKeySet(key): reports are checked against this public key from now on.
on_report_key_set = CreateNewEvent([("key", ECPoint)], "ReportKeySet")
# MaxReportAgeSet(ms): the freshness bound of reports changed.
on_max_report_age_set = CreateNewEvent([("ms", int)], "MaxReportAgeSet")
# ReportVerified(feed_id, price, timestamp, round): a signed report was accepted.
on_report_verified = CreateNewEvent(
    [("feed_id", int), ("price", int), ("timestamp", int), ("round", int)], "ReportVerified"
)


def manifest_metadata() -> NeoMetadata:
    meta = NeoMetadata()
    meta.name = "PriceFeed"
    meta.description = (
        "Latest price per feed (8 decimals), written only by the publisher;"
        " checks the service's signed price reports."
    )
    return meta


@public
def _deploy(data: Any, update: bool) -> None:
    if not update:
        storage.put_uint160(PUBLISHER_KEY, _initial_publisher(data))
        _put_initial_report_key(data)
        storage.put_int(MAX_AGE_KEY, DEFAULT_MAX_REPORT_AGE)


def _initial_publisher(data: Any) -> UInt160:
    # Returned rather than assigned to a local (see Consumer: neo3-boa 1.5 drops the store
    # of a local assigned in an if branch and read after it).
    if isinstance(data, list):
        if len(data) != 2:
            raise Exception(BAD_DEPLOY_DATA)
        return _publisher_or_sender(data[0])
    return _publisher_or_sender(data)


def _publisher_or_sender(value: Any) -> UInt160:
    if value is None:
        return runtime.script_container.sender
    if isinstance(value, UInt160):
        return value
    raise Exception(BAD_DEPLOY_DATA)


def _put_initial_report_key(data: Any) -> None:
    # ``data`` passed _initial_publisher: a list is [publisher, key or null].
    if isinstance(data, list):
        _put_report_key_or_none(data[1])


def _put_report_key_or_none(key: Any) -> None:
    if key is None:
        return
    # Nested: neo3-boa narrows ``key`` to bytes in the branch of the isinstance only, not
    # in the rest of an ``and``.
    if isinstance(key, bytes):  # noqa: SIM102
        if _is_public_key(key):
            storage.put(REPORT_KEY, key)
            return
    raise Exception(BAD_KEY)


def _is_public_key(key: bytes) -> bool:
    if len(key) != 33:
        return False
    return key[0] == 2 or key[0] == 3


def _require_publisher() -> None:
    if not runtime.check_witness(storage.get_uint160(PUBLISHER_KEY)):
        abort(NOT_PUBLISHER)


@public
def update(key: str, price: int, timestamp: int, round_id: int) -> None:
    _require_publisher()
    if price <= 0 or timestamp <= 0 or round_id <= 0:
        abort("price, timestamp and round must be positive")
    k = to_bytes(key)
    if storage.get_int(ROUND_PREFIX + k) >= round_id:
        abort(STALE)
    storage.put_int(PRICE_PREFIX + k, price)
    storage.put_int(TIME_PREFIX + k, timestamp)
    storage.put_int(ROUND_PREFIX + k, round_id)
    on_price_updated(key, price, timestamp, round_id)


@public(safe=True)
def get_latest(key: str) -> list[int]:
    """[price, timestamp, round]; all 0 for a key never updated."""
    context = storage.get_read_only_context()
    k = to_bytes(key)
    return [
        storage.get_int(PRICE_PREFIX + k, context),
        storage.get_int(TIME_PREFIX + k, context),
        storage.get_int(ROUND_PREFIX + k, context),
    ]


@public(name="publisher", safe=True)
def get_publisher() -> UInt160:
    return storage.get_uint160(PUBLISHER_KEY, storage.get_read_only_context())


@public
def set_report_key(key: ECPoint) -> None:
    """Publisher only: reports are checked against ``key`` from now on (rotation); reports
    signed by the previous key are refused."""
    _require_publisher()
    if not _is_public_key(key):
        abort(BAD_KEY)
    storage.put(REPORT_KEY, key)
    on_report_key_set(key)


@public(safe=True)
def report_key() -> bytes:
    """The compressed public key reports are checked against; empty when none is set."""
    return storage.get(REPORT_KEY, storage.get_read_only_context())


@public
def set_max_report_age(ms: int) -> None:
    """Publisher only: how far (ms) a report's timestamp may be from the block time."""
    _require_publisher()
    if ms <= 0 or ms > LONGEST_MAX_REPORT_AGE:
        abort("max report age must be between 1 ms and one day")
    storage.put_int(MAX_AGE_KEY, ms)
    on_max_report_age_set(ms)


@public(safe=True)
def max_report_age() -> int:
    return storage.get_int(MAX_AGE_KEY, storage.get_read_only_context())


@public
def verify(report: bytes, signature: bytes, feed_id: int) -> int:
    """Accepts a signed report of ``feed_id`` and returns its price (8 decimals).

    Every report of every feed is signed by the same key, so the signature alone does not
    say which asset is priced: ``feed_id`` is the feed the caller wants, and a report of any
    other feed is refused. A consumer that skipped that check would accept a cheap asset's
    price for an expensive one.

    Aborts with "no report key is set", "bad signature", "not a version 1 report with 8
    decimals", "report is for another feed", "stale report" (the report's time is further
    than max_report_age from the block time, either way) or "report replayed or older than
    the last accepted" (its round is not above the last one accepted for the feed).
    """
    key = storage.get(REPORT_KEY)
    if len(key) == 0:
        abort(NO_REPORT_KEY)
    if not CryptoLib.verify_with_ecdsa(
        report, ECPoint(key), signature, NamedCurveHash.SECP256R1SHA256
    ):
        abort(BAD_SIGNATURE)
    # [version, feed_id, pair, price, decimals, round_id, timestamp_ms, sources_used]
    fields: list[Any] = StdLib.deserialize(report)
    if len(fields) != REPORT_FIELDS or fields[0] != REPORT_VERSION:
        abort(BAD_REPORT)
    if fields[4] != REPORT_DECIMALS:
        abort(BAD_REPORT)
    if fields[1] != feed_id:
        abort(OTHER_FEED)
    price: int = fields[3]
    round_id: int = fields[5]
    timestamp: int = fields[6]
    max_age = storage.get_int(MAX_AGE_KEY)
    now = runtime.time
    if timestamp < now - max_age or timestamp > now + max_age:
        abort(STALE_REPORT)
    k = to_bytes(feed_id)
    if round_id <= storage.get_int(VERIFIED_ROUND_PREFIX + k):
        abort(OLD_REPORT)
    storage.put_int(VERIFIED_PRICE_PREFIX + k, price)
    storage.put_int(VERIFIED_TIME_PREFIX + k, timestamp)
    storage.put_int(VERIFIED_ROUND_PREFIX + k, round_id)
    on_report_verified(feed_id, price, timestamp, round_id)
    return price


@public(safe=True)
def get_verified(feed_id: int) -> list[int]:
    """[price, timestamp, round] of the last report accepted for ``feed_id``; all 0 if none."""
    context = storage.get_read_only_context()
    k = to_bytes(feed_id)
    return [
        storage.get_int(VERIFIED_PRICE_PREFIX + k, context),
        storage.get_int(VERIFIED_TIME_PREFIX + k, context),
        storage.get_int(VERIFIED_ROUND_PREFIX + k, context),
    ]
