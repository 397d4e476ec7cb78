"""PriceConsumer: an example of a contract that acts on a signed price report.

Anyone may bring the service's latest report of a feed (its bytes and signature, from the
API) to ``settle``. The contract does not check the report itself: it asks the PriceFeed
contract to, in the same transaction, and names the one feed it trusts. PriceFeed's
``verify`` aborts the whole transaction unless the signature is the service's, the report
is of that feed, fresh and newer than the last one accepted; otherwise it returns the price.

Both are fixed when the contract is deployed, from the deploy data
``[PriceFeed contract Hash160, feed id]``.

Compiled with neo3-boa (``make contracts``); see README.md next to this file.
"""

from typing import Any

from boa3.sc import storage
from boa3.sc.compiletime import NeoMetadata, public
from boa3.sc.types import UInt160
from boa3.sc.utils import CreateNewEvent, call_contract

PRICEFEED_KEY = b"pricefeed"
FEED_KEY = b"feed"
PRICE_KEY = b"price"

BAD_DEPLOY_DATA = "deploy data must be [PriceFeed contract Hash160, feed id]"

# Settled(price): a report's price (8 decimals) was verified and is now the last price.
on_settled = CreateNewEvent([("price", int)], "Settled")


def manifest_metadata() -> NeoMetadata:
    meta = NeoMetadata()
    meta.name = "PriceConsumer"
    meta.description = "Example: settles on a signed price report checked by PriceFeed."
    # The PriceFeed's hash is only known at deployment: any contract's verify may be called,
    # and the one called is the one stored at deployment.
    meta.add_permission(methods=["verify"])
    return meta


@public
def _deploy(data: Any, update: bool) -> None:
    if not update:
        _store_settings(data)


def _store_settings(data: Any) -> None:
    # Nested ifs: neo3-boa narrows a type in the branch of a true isinstance only, not in
    # the rest of an ``and``.
    if isinstance(data, list):  # noqa: SIM102
        if len(data) == 2:
            _store_pricefeed_and_feed(data[0], data[1])
            return
    raise Exception(BAD_DEPLOY_DATA)


def _store_pricefeed_and_feed(pricefeed: Any, feed_id: Any) -> None:
    if isinstance(pricefeed, UInt160):  # noqa: SIM102 (see above)
        if isinstance(feed_id, int):
            storage.put_uint160(PRICEFEED_KEY, pricefeed)
            storage.put_int(FEED_KEY, feed_id)
            return
    raise Exception(BAD_DEPLOY_DATA)


@public
def settle(report: bytes, signature: bytes) -> int:
    """Verifies the report with PriceFeed (which aborts unless it is good) and keeps its
    price; returns the price (8 decimals)."""
    price: int = call_contract(
        storage.get_uint160(PRICEFEED_KEY),
        "verify",
        [report, signature, storage.get_int(FEED_KEY)],
    )
    storage.put_int(PRICE_KEY, price)
    on_settled(price)
    return price


@public(safe=True)
def last_price() -> int:
    """The price of the last settled report (8 decimals); 0 before the first."""
    return storage.get_int(PRICE_KEY, storage.get_read_only_context())


@public(safe=True)
def pricefeed() -> UInt160:
    return storage.get_uint160(PRICEFEED_KEY, storage.get_read_only_context())


@public(safe=True)
def feed_id() -> int:
    return storage.get_int(FEED_KEY, storage.get_read_only_context())
