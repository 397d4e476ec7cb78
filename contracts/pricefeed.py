"""PriceFeed: the latest price of each of the service's price feeds, written by its publisher.

A feed's key is its id in the service (``"feed:<id>"``): ids are unique across tenants, so
keys never collide. Each entry keeps the price in fixed point with 8 decimals (an integer:
12.34 is 1234000000), the round's timestamp (milliseconds since the epoch) and the round's
id; an update older than the stored one (by round id) is refused, so a late or replayed
transaction cannot put an older price back. Only the publisher, fixed when the contract is
deployed (the deploy data, a Hash160, or the deploying transaction's sender), may update.

Compiled with neo3-boa (``make contracts``); see README.md next to this file.
"""

from typing import Any

from boa3.sc import runtime, storage
from boa3.sc.compiletime import NeoMetadata, public
from boa3.sc.types import UInt160
from boa3.sc.utils import CreateNewEvent, abort, to_bytes

PUBLISHER_KEY = b"publisher"
PRICE_PREFIX = b"price:"
TIME_PREFIX = b"time:"
ROUND_PREFIX = b"round:"

NOT_PUBLISHER = "only the publisher can update"
STALE = "a newer round is stored"

# PriceUpdated(key, price, timestamp, round): a feed's latest price was written.
on_price_updated = CreateNewEvent(
    [("key", str), ("price", int), ("timestamp", int), ("round", int)], "PriceUpdated"
)


def manifest_metadata() -> NeoMetadata:
    meta = NeoMetadata()
    meta.name = "PriceFeed"
    meta.description = "Latest price per feed (8 decimals), written only by the publisher."
    return meta


@public
def _deploy(data: Any, update: bool) -> None:
    if not update:
        storage.put_uint160(PUBLISHER_KEY, _initial_publisher(data))


def _initial_publisher(data: Any) -> UInt160:
    # Returned rather than assigned to a local (see Consumer: neo3-boa 1.5 drops the store
    # of a local assigned in an if branch and read after it).
    if data is None:
        return runtime.script_container.sender
    if isinstance(data, UInt160):
        return data
    raise Exception("deploy data must be the publisher's Hash160 or null")


@public
def update(key: str, price: int, timestamp: int, round_id: int) -> None:
    if not runtime.check_witness(storage.get_uint160(PUBLISHER_KEY)):
        abort(NOT_PUBLISHER)
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
