"""Neo VM stack items, as the node's JSON-RPC shows them, turned into plain JSON.

The same rules apply to the ``stack`` of ``invokefunction`` / ``invokescript`` results and
application logs, and to the ``state`` of notifications (contract events):

- ``Integer``: a JSON number when its magnitude is at most 2**53 - 1 (a JavaScript safe
  integer), else a string of decimal digits, with "-" if negative: ``"-123456789012345678"``.
- ``Boolean``: true or false. ``Any`` (the VM's null): null.
- ``Pointer``: its position in the script, a number.
- ``ByteString`` and ``Buffer`` (raw bytes; the node sends base64), in this order:

  1. bytes that are valid UTF-8 without control characters (tab, newline and carriage
     return are allowed) become that text; no bytes at all become ``""``;
  2. exactly 20 other bytes are taken for a script hash and become
     ``{"address": "N…", "hash": "0x…"}``: the VM holds hashes little-endian, ``hash`` is
     the big-endian hex Neo shows, ``address`` the account's Neo N3 address;
  3. anything else becomes lowercase hex without a prefix.

  This is a guess, since the VM does not say what bytes mean: a 20-byte value whose bytes
  happen to be printable stays a string (``"abcdefghijklmnopqrst"``), and a short binary
  value can look like text. Callers who need the exact bytes pass ``bytes_as="hex"``:
  every ``ByteString`` and ``Buffer`` then becomes lowercase hex, map keys included.
- ``Array`` and ``Struct``: lists, decoded item by item.
- ``Map``: an object. Keys (Boolean, Integer or ByteString items) are decoded as above and
  turned into strings: text stays as it is, numbers become decimal digits, booleans
  ``"true"``/``"false"``, a script hash its address, other bytes their hex. Two keys that
  end up as the same string (the Integer 1 and the text "1") keep the later value.
- ``InteropInterface`` (an iterator, in practice): an iterator the node kept open for a
  session becomes ``{"interface": "IIterator"}`` (the session id is dropped: it means
  nothing outside that RPC session); one the node expanded in place becomes
  ``{"interface": "IIterator", "values": [...], "truncated": true|false}``; any other
  becomes null.

Limits against hostile or broken nodes: containers (Array, Struct, Map, expanded
iterators) nest at most ``MAX_DEPTH`` (16) deep and one call decodes at most ``MAX_ITEMS``
(10,000) items, counting every item, map keys and containers included. Going over, or any
malformed item (unknown type, a value of the wrong JSON type, bad base64, an integer
beyond Neo's 256-bit range), raises ``StackError`` naming the item's place in the JSON,
like ``stack[0].value[2].value``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Literal

from neo3.core.types import UInt160

from neosl.neo.addresses import script_hash_to_address

type JSON = bool | int | str | list[JSON] | dict[str, JSON] | None
type BytesAs = Literal["auto", "hex"]

MAX_DEPTH = 16
MAX_ITEMS = 10_000

MAX_SAFE_INTEGER = 2**53 - 1
# VM integers are at most 32 bytes, two's complement.
_INT_MIN = -(2**255)
_INT_MAX = 2**255 - 1
# 2**255 has 77 digits: a longer digit string (leading zeros aside) is out of range, and is
# rejected before Python spends time converting it.
_INT_MAX_DIGITS = 77
_DECIMAL = re.compile(r"-?[0-9]+")
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_MAP_KEY_TYPES = frozenset({"Boolean", "Integer", "ByteString"})


class StackError(ValueError):
    """A stack item that is malformed or over the limits; the message says where and why."""


def decode(item: object, *, bytes_as: BytesAs = "auto") -> JSON:
    """One stack item as plain JSON, by the rules in this module's docstring.

    Raises:
        StackError: ``item`` is malformed or over the limits.
        ValueError: ``bytes_as`` is neither "auto" nor "hex".
    """
    return _Decoder(bytes_as).decode(item, "item", 0)


def decode_stack(stack: object, *, bytes_as: BytesAs = "auto") -> list[JSON]:
    """Every item of a result's ``stack`` (or any list of items), in order.

    ``MAX_ITEMS`` counts the items of the whole list together.

    Raises:
        StackError: ``stack`` is not a list, or an item is malformed or over the limits.
        ValueError: ``bytes_as`` is neither "auto" nor "hex".
    """
    if not isinstance(stack, list):
        raise StackError(f"stack: must be a list of stack items, got {json_type(stack)}")
    decoder = _Decoder(bytes_as)
    return [decoder.decode(item, f"stack[{i}]", 0) for i, item in enumerate(stack)]


def json_type(value: object) -> str:
    """The JSON type of ``value`` (for messages), or its Python type's name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_text(text: str) -> bool:
    return not any(
        unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS for char in text
    )


class _Decoder:
    def __init__(self, bytes_as: BytesAs) -> None:
        if bytes_as not in ("auto", "hex"):
            raise ValueError(f'bytes_as must be "auto" or "hex", got {bytes_as!r}')
        self.bytes_as = bytes_as
        self.items = 0

    def decode(self, item: object, path: str, depth: int) -> JSON:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise StackError(f"{path}: more than {MAX_ITEMS} stack items in one decode")
        if not isinstance(item, dict):
            raise StackError(f"{path}: a stack item must be an object, got {json_type(item)}")
        kind = item.get("type")
        value = item.get("value")
        vpath = f"{path}.value"
        match kind:
            case "Any":
                return None
            case "Boolean":
                if not isinstance(value, bool):
                    raise StackError(f"{vpath}: a Boolean needs true or false")
                return value
            case "Integer":
                return _json_integer(_integer(value, vpath))
            case "Pointer":
                position = _integer(value, vpath)
                if not 0 <= position <= MAX_SAFE_INTEGER:
                    raise StackError(f"{vpath}: pointer {position} is not a script position")
                return position
            case "ByteString" | "Buffer":
                return self._bytes(_base64(value, vpath))
            case "Array" | "Struct":
                return [
                    self.decode(child, f"{vpath}[{i}]", depth + 1)
                    for i, child in enumerate(self._children(value, vpath, depth))
                ]
            case "Map":
                return self._map(value, vpath, depth)
            case "InteropInterface":
                return self._interop(item, path, depth)
            case _:
                shown = _shorten(str(kind)) if isinstance(kind, str) else json_type(kind)
                raise StackError(f"{path}.type: unknown stack item type {shown!r}")

    def _children(self, value: object, path: str, depth: int) -> list[object]:
        if not isinstance(value, list):
            raise StackError(f"{path}: must be a list, got {json_type(value)}")
        if depth + 1 > MAX_DEPTH:
            raise StackError(f"{path}: stack items nested more than {MAX_DEPTH} deep")
        return value

    def _bytes(self, raw: bytes) -> JSON:
        if self.bytes_as == "hex":
            return raw.hex()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if _is_text(text):
                return text
        if len(raw) == 20:
            # Stack items hold a script hash little-endian, as UInt160 stores it.
            script_hash = UInt160(raw)
            return {"address": script_hash_to_address(script_hash), "hash": f"0x{script_hash}"}
        return raw.hex()

    def _map(self, value: object, path: str, depth: int) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for i, entry in enumerate(self._children(value, path, depth)):
            epath = f"{path}[{i}]"
            if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
                raise StackError(f"{epath}: a map entry must be an object with key and value")
            key_item = entry["key"]
            kind = key_item.get("type") if isinstance(key_item, dict) else None
            if kind not in _MAP_KEY_TYPES:
                raise StackError(
                    f"{epath}.key: a map key must be a Boolean, Integer or ByteString item"
                )
            key = self.decode(key_item, f"{epath}.key", depth + 1)
            out[_key_text(key)] = self.decode(entry["value"], f"{epath}.value", depth + 1)
        return out

    def _interop(self, item: dict[object, object], path: str, depth: int) -> JSON:
        values = item.get("iterator")
        if values is not None:
            vpath = f"{path}.iterator"
            decoded = [
                self.decode(child, f"{vpath}[{i}]", depth + 1)
                for i, child in enumerate(self._children(values, vpath, depth))
            ]
            truncated = item.get("truncated", False)
            if not isinstance(truncated, bool):
                raise StackError(f"{path}.truncated: must be true or false")
            return {"interface": "IIterator", "values": decoded, "truncated": truncated}
        interface = item.get("interface")
        if interface is None:
            return None
        if not isinstance(interface, str):
            raise StackError(f"{path}.interface: must be a string, got {json_type(interface)}")
        return {"interface": interface}


def _integer(value: object, path: str) -> int:
    # The node sends integers as strings; a number is accepted as well.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        if len(value.lstrip("-").lstrip("0")) > _INT_MAX_DIGITS:
            raise StackError(f"{path}: integer beyond Neo's 256-bit range")
        number = int(value)
    else:
        shown = repr(_shorten(value)) if isinstance(value, str) else json_type(value)
        raise StackError(f"{path}: {shown} is not a decimal integer")
    if not _INT_MIN <= number <= _INT_MAX:
        raise StackError(f"{path}: integer beyond Neo's 256-bit range")
    return number


def _json_integer(number: int) -> JSON:
    return number if abs(number) <= MAX_SAFE_INTEGER else str(number)


def _base64(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise StackError(f"{path}: bytes must be a base64 string, got {json_type(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise StackError(f"{path}: {_shorten(value)!r} is not valid base64") from None


def _key_text(key: JSON) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, dict) and isinstance(key.get("address"), str):
        return str(key["address"])
    # Unreachable: keys are checked to be Boolean, Integer or ByteString items.
    raise StackError(f"map key {key!r} cannot be a JSON object key")
