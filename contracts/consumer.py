"""Consumer: an example contract that keeps one string value per string key.

Only the owner may write. The owner is fixed when the contract is deployed: the deploy
data (a Hash160), or the deploying transaction's sender when the data is null.

Compiled with neo3-boa (``make contracts``); see README.md next to this file.
"""

from typing import Any

from boa3.sc import runtime, storage
from boa3.sc.compiletime import NeoMetadata, public
from boa3.sc.contracts import LedgerContract
from boa3.sc.types import UInt160
from boa3.sc.utils import CreateNewEvent, abort, to_bytes

OWNER_KEY = b"owner"
VALUE_PREFIX = b"value:"
BURN_KEY = b"burn"

NOT_OWNER = "only the owner can write"

# ValueSet(key, value): a value was written by the owner.
on_value_set = CreateNewEvent([("key", str), ("value", str)], "ValueSet")


def manifest_metadata() -> NeoMetadata:
    meta = NeoMetadata()
    meta.name = "Consumer"
    meta.description = "Keeps a string value per string key; only the owner writes."
    return meta


@public
def _deploy(data: Any, update: bool) -> None:
    if not update:
        storage.put_uint160(OWNER_KEY, _initial_owner(data))


def _initial_owner(data: Any) -> UInt160:
    # Returned rather than assigned to a local: neo3-boa 1.5 drops the store of a local
    # assigned inside an if branch and read after it, which left the owner null.
    if data is None:
        return runtime.script_container.sender
    if isinstance(data, UInt160):
        return data
    # raise, not abort: the compiler knows that raise does not return.
    raise Exception("deploy data must be the owner's Hash160 or null")


def _require_owner() -> None:
    if not runtime.check_witness(storage.get_uint160(OWNER_KEY)):
        abort(NOT_OWNER)


@public(name="set")
def set_value(key: str, value: str) -> None:
    _require_owner()
    storage.put_str(VALUE_PREFIX + to_bytes(key), value)
    on_value_set(key, value)


@public(name="get", safe=True)
def get_value(key: str) -> str:
    return storage.get_str(VALUE_PREFIX + to_bytes(key), storage.get_read_only_context())


@public(name="owner", safe=True)
def get_owner() -> UInt160:
    return storage.get_uint160(OWNER_KEY, storage.get_read_only_context())


@public
def fail(reason: str) -> None:
    # Always FAULTs: gives callers a transaction that is known to fail, with a known reason.
    abort(reason)


@public
def fail_from(index: int) -> None:
    # FAULTs once the chain has persisted block ``index``: a test invocation before then
    # HALTs, the same call included in a later block FAULTs (tests of on-chain failures).
    if LedgerContract.get_current_index() >= index:
        abort("too late")


@public
def burn(n: int) -> None:
    # Costs GAS in proportion to n (one storage write per round, about 0.011 GAS at default
    # prices), for tests of fee limits.
    _require_owner()
    if n < 0:
        abort("n must not be negative")
    i = 0
    while i < n:
        storage.put_int(BURN_KEY, i)
        i += 1
