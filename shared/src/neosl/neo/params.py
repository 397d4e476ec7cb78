"""Arguments for contract calls, from the JSON a sandboxed function passes to Neo parameters.

Plain JSON values map as follows:

- a number with an integer value within ±(2**53 - 1) → ``Integer``; any other number
  (1.5, 1e300, or 2**60, which JavaScript cannot hold exactly) is an error: big integers
  are passed as ``neo.integer("…")``;
- a string → ``String``; true/false → ``Boolean``; null → ``Any``;
- an array → ``Array`` of its items, mapped the same way.

Objects made by the sandbox's helpers carry a type tag and a string value:

=================================================  ===========================================
``{"$neo": "Hash160", "value": …}``                a Neo N3 address ("N…") or "0x" + 40 hex
                                                   digits, the script hash big-endian as Neo
                                                   shows it
``{"$neo": "Hash256", "value": …}``                "0x" + 64 hex digits
``{"$neo": "ByteArray", "value": …}``              hex, with or without "0x" (may be empty)
``{"$neo": "Integer", "value": …}``                decimal digits, "-" allowed, within Neo's
                                                   256-bit range: -2**255 … 2**255 - 1
``{"$neo": "PublicKey", "value": …}``              66 hex digits: a compressed secp256r1 key
``{"$neo": "String", "value": …}``                 any text
=================================================  ===========================================

Hex digits may be upper or lower case. Any other object is an error, as is a tagged object
with other keys. Limits: at most ``MAX_ARGS`` (16) arguments; arrays nested at most
``MAX_DEPTH`` (8) deep (an argument that is an array is at depth 1); at most ``MAX_ITEMS``
(1024) values in all, arrays and their items included; at most ``MAX_BYTES`` (64 KiB) in all
of String (as UTF-8), ByteArray, Hash160, Hash256 and PublicKey values. Every error raises
``ParamError`` naming the place, e.g. ``args[2].value: "12x" is not a decimal integer``.

``parse_args`` checks everything and returns ``Param`` values; ``to_rpc`` gives the
``invokefunction`` form, ``to_python`` the values neo-mamba's
``ScriptBuilder.emit_contract_call_with_args`` takes, and ``to_json`` the canonical JSON
to store and show: plain JSON where it is exact, the tagged form otherwise (Hash160 as
"0x" + hex, ByteArray and PublicKey as lowercase hex without prefix, an Integer beyond
±(2**53 - 1) as a decimal string). ``parse_args(to_json(ps)) == ps`` for every ``ps`` that
``parse_args`` returned.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neo3.core.cryptography import ECPoint
from neo3.core.types import UInt160, UInt256

from neosl.neo.addresses import InvalidAddress, address_to_script_hash
from neosl.neo.stack import JSON, json_type

MAX_ARGS = 16
MAX_DEPTH = 8
MAX_ITEMS = 1024
MAX_BYTES = 64 * 1024

MAX_SAFE_INTEGER = 2**53 - 1
MIN_INTEGER = -(2**255)
MAX_INTEGER = 2**255 - 1

type ParamType = Literal[
    "Any", "Boolean", "Integer", "String", "ByteArray", "Hash160", "Hash256", "PublicKey", "Array"
]
type ParamValue = bool | int | str | bytes | UInt160 | UInt256 | tuple[Param, ...] | None

_TAGGED = ("Hash160", "Hash256", "ByteArray", "Integer", "PublicKey", "String")
_TAG_KEYS = frozenset({"$neo", "value"})
_HEX = re.compile(r"[0-9a-fA-F]*")
_HASH160_HEX = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH256_HEX = re.compile(r"0x[0-9a-fA-F]{64}")
_PUBLIC_KEY_HEX = re.compile(r"0[23][0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"-?[0-9]+")
# 2**255 has 77 digits: a longer digit string (leading zeros aside) is out of range.
_INTEGER_MAX_DIGITS = 77
# The field prime of secp256r1: a compressed key's x coordinate must be below it.
_P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1


class ParamError(ValueError):
    """An argument that cannot be a Neo contract parameter; the message names its place."""


@dataclass(frozen=True)
class Param:
    """One contract parameter, checked: build these with ``parse_args``.

    ``value`` by ``type``: Any → None, Boolean → bool, Integer → int, String → str,
    ByteArray → bytes, Hash160 → UInt160, Hash256 → UInt256, PublicKey → the 33 bytes of
    the compressed key, Array → a tuple of ``Param``.
    """

    type: ParamType
    value: ParamValue

    def __repr__(self) -> str:
        # neo-mamba's hashes have no readable repr of their own.
        shown = self.value
        if isinstance(shown, UInt160 | UInt256):
            return f"Param({self.type!r}, 0x{shown})"
        return f"Param({self.type!r}, {shown!r})"


def parse_args(args: object) -> list[Param]:
    """The parameters for a JSON array of arguments, mapped as the module docstring says.

    Raises:
        ParamError: ``args`` is not an array, an argument cannot be mapped, or a limit is
            exceeded; the message names the place (``args[1][0].value: …``).
    """
    if not isinstance(args, list):
        raise ParamError(f"args: must be an array, got {json_type(args)}")
    if len(args) > MAX_ARGS:
        raise ParamError(f"args: {len(args)} arguments, at most {MAX_ARGS} are allowed")
    parser = _Parser()
    return [parser.value(arg, f"args[{i}]", 0) for i, arg in enumerate(args)]


def to_rpc(params: Sequence[Param]) -> list[dict[str, JSON]]:
    """The ``ContractParameter`` JSON that ``invokefunction`` takes, one per parameter.

    Integer as a decimal string, ByteArray as base64, Hash160/Hash256 as "0x" + big-endian
    hex, PublicKey as hex, Any as ``{"type": "Any"}`` without a value.
    """
    return [_rpc(p) for p in params]


def to_python(params: Sequence[Param]) -> list[Any]:
    """The values ``ScriptBuilder.emit_contract_call_with_args`` takes for the same call.

    Any → None, Boolean → bool, Integer → int, String → str (pushed as UTF-8 bytes),
    ByteArray → bytes, Hash160 → UInt160, Hash256 → UInt256 (pushed as their little-endian
    bytes), PublicKey → ECPoint (pushed compressed), Array → list. Typed ``Any`` because
    neo-mamba's own parameter type leaves out None.
    """
    return [_python(p) for p in params]


def to_json(params: Sequence[Param]) -> list[JSON]:
    """The canonical JSON form (see the module docstring), which ``parse_args`` reads back."""
    return [_json(p) for p in params]


def _show(value: object) -> str:
    if isinstance(value, str):
        shown = json.dumps(value[:40], ensure_ascii=False)
        # A lone surrogate (possible in JSON text) would make the message unprintable.
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        return shown if len(value) <= 40 else shown[:-1] + '…"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool | int) or value is None:
        return json.dumps(value)
    return json_type(value)


class _Parser:
    def __init__(self) -> None:
        self.items = 0
        self.bytes = 0

    def value(self, value: object, path: str, depth: int) -> Param:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise ParamError(f"{path}: more than {MAX_ITEMS} values in all")
        if value is None:
            return Param("Any", None)
        if isinstance(value, bool):
            return Param("Boolean", value)
        if isinstance(value, int | float):
            return Param("Integer", _plain_integer(value, path))
        if isinstance(value, str):
            return Param("String", self._string(value, path))
        if isinstance(value, list):
            if depth + 1 > MAX_DEPTH:
                raise ParamError(f"{path}: arrays nested more than {MAX_DEPTH} deep")
            return Param(
                "Array",
                tuple(self.value(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)),
            )
        if isinstance(value, dict):
            return self._tagged(value, path)
        raise ParamError(f"{path}: a {type(value).__name__} is not a JSON value")

    def _spend(self, size: int, path: str) -> None:
        self.bytes += size
        if self.bytes > MAX_BYTES:
            raise ParamError(f"{path}: strings and bytes exceed {MAX_BYTES} bytes in all")

    def _string(self, text: str, path: str) -> str:
        # Each character is at least one byte: refuse a huge string before encoding it.
        if len(text) > MAX_BYTES - self.bytes:
            self._spend(len(text), path)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise ParamError(f"{path}: {_show(text)} is not valid Unicode text") from None
        self._spend(size, path)
        return text

    def _tagged(self, obj: dict[Any, Any], path: str) -> Param:
        if "$neo" not in obj:
            raise ParamError(
                f'{path}: an object must be a tagged value like {{"$neo": "Hash160", '
                f'"value": "…"}}, as made by the neo.* helpers'
            )
        tag = obj["$neo"]
        if tag not in _TAGGED:
            raise ParamError(f"{path}.$neo: {_show(tag)} is not one of {', '.join(_TAGGED)}")
        extra = sorted(str(k) for k in obj if k not in _TAG_KEYS)
        if extra:
            raise ParamError(
                f'{path}: unexpected key {_show(extra[0])} (a {tag} value has only "$neo" '
                f'and "value")'
            )
        vpath = f"{path}.value"
        if "value" not in obj:
            raise ParamError(f"{vpath}: missing")
        text = obj["value"]
        if not isinstance(text, str):
            raise ParamError(f"{vpath}: must be a string, got {json_type(text)}")
        match tag:
            case "Hash160":
                self._spend(20, vpath)
                return Param("Hash160", _hash160(text, vpath))
            case "Hash256":
                if not _HASH256_HEX.fullmatch(text):
                    raise ParamError(f"{vpath}: {_show(text)} is not 0x + 64 hex digits")
                self._spend(32, vpath)
                return Param("Hash256", UInt256.from_string(text[2:]))
            case "ByteArray":
                digits = text.removeprefix("0x")
                if len(digits) // 2 > MAX_BYTES - self.bytes:
                    self._spend(len(digits) // 2, vpath)
                if not _HEX.fullmatch(digits) or len(digits) % 2:
                    raise ParamError(f"{vpath}: {_show(text)} is not hex (pairs of 0-9, a-f)")
                self._spend(len(digits) // 2, vpath)
                return Param("ByteArray", bytes.fromhex(digits))
            case "Integer":
                return Param("Integer", _tagged_integer(text, vpath))
            case "PublicKey":
                self._spend(33, vpath)
                return Param("PublicKey", _public_key(text, vpath))
            case _:
                return Param("String", self._string(text, vpath))


def _plain_integer(value: int | float, path: str) -> int:
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ParamError(f"{path}: {_show(value)} is not an integer")
    if abs(value) > MAX_SAFE_INTEGER:
        raise ParamError(
            f"{path}: {_show(value)} is beyond ±{MAX_SAFE_INTEGER}, the exact range of a "
            f'JavaScript number (use neo.integer("…") for big values)'
        )
    return int(value)


def _tagged_integer(text: str, path: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ParamError(f"{path}: {_show(text)} is not a decimal integer")
    if len(text.lstrip("-").lstrip("0")) > _INTEGER_MAX_DIGITS or not (
        MIN_INTEGER <= (number := int(text)) <= MAX_INTEGER
    ):
        raise ParamError(f"{path}: {_show(text)} is beyond Neo's 256-bit integer range")
    return number


def _hash160(text: str, path: str) -> UInt160:
    if text.startswith("0x"):
        if not _HASH160_HEX.fullmatch(text):
            raise ParamError(f"{path}: {_show(text)} is not 0x + 40 hex digits")
        return UInt160.from_string(text[2:])
    try:
        return address_to_script_hash(text)
    except InvalidAddress as exc:
        raise ParamError(
            f"{path}: {_show(text)} is not a Neo N3 address ({exc}) nor 0x + 40 hex digits"
        ) from None


def _public_key(text: str, path: str) -> bytes:
    if not _PUBLIC_KEY_HEX.fullmatch(text):
        raise ParamError(
            f"{path}: {_show(text)} is not a compressed public key (66 hex digits, "
            f"starting 02 or 03)"
        )
    data = bytes.fromhex(text)
    if int.from_bytes(data[1:], "big") >= _P256_PRIME or not _on_curve(data):
        raise ParamError(f"{path}: {_show(text)} is not a point on the secp256r1 curve")
    return data


def _on_curve(data: bytes) -> bool:
    try:
        ECPoint.deserialize_from_bytes(data)
    except Exception:
        # neo3crypto raises its own ECCException, not a ValueError.
        return False
    return True


def _rpc(param: Param) -> dict[str, JSON]:
    value = param.value
    match param.type:
        case "Any":
            return {"type": "Any"}
        case "Integer":
            return {"type": "Integer", "value": str(value)}
        case "ByteArray":
            assert isinstance(value, bytes)
            return {"type": "ByteArray", "value": base64.b64encode(value).decode("ascii")}
        case "Hash160" | "Hash256":
            assert isinstance(value, UInt160 | UInt256)
            return {"type": param.type, "value": f"0x{value}"}
        case "PublicKey":
            assert isinstance(value, bytes)
            return {"type": "PublicKey", "value": value.hex()}
        case "Array":
            assert isinstance(value, tuple)
            items: list[JSON] = [_rpc(p) for p in value]
            return {"type": "Array", "value": items}
        case _:
            assert isinstance(value, bool | str)
            return {"type": param.type, "value": value}


def _python(param: Param) -> Any:
    value = param.value
    if param.type == "PublicKey":
        assert isinstance(value, bytes)
        return ECPoint.deserialize_from_bytes(value)
    if isinstance(value, tuple):
        return [_python(p) for p in value]
    return value


def _json(param: Param) -> JSON:
    value = param.value
    match param.type:
        case "Integer":
            assert isinstance(value, int)
            if abs(value) <= MAX_SAFE_INTEGER:
                return value
            return {"$neo": "Integer", "value": str(value)}
        case "ByteArray" | "PublicKey":
            assert isinstance(value, bytes)
            return {"$neo": param.type, "value": value.hex()}
        case "Hash160" | "Hash256":
            assert isinstance(value, UInt160 | UInt256)
            return {"$neo": param.type, "value": f"0x{value}"}
        case "Array":
            assert isinstance(value, tuple)
            return [_json(p) for p in value]
        case _:
            assert value is None or isinstance(value, bool | str)
            return value
