"""Neo N3 addresses: validation with a reason, and conversion to and from script hashes.

An address is base58check(version byte 0x35 + 20-byte script hash, little-endian), always
34 characters starting with "N". The checks run in an order that gives the most useful
reason first; nothing here talks to a node.
"""

from __future__ import annotations

import hashlib

from neo3.core.types import UInt160
from neo3.wallet import utils as wallet_utils

ADDRESS_VERSION = 0x35
ADDRESS_LENGTH = 34

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58)}


class InvalidAddress(ValueError):
    """Not a Neo N3 address; the message says why."""


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _BASE58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    # Each leading "1" stands for a leading zero byte.
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + body


def validate_address(value: object) -> str:
    """Return ``value`` unchanged if it is a Neo N3 address.

    Raises:
        InvalidAddress: with the reason: "not a string", "must be 34 characters",
            "not valid base58", "bad checksum" or "not a Neo N3 address (version byte …)".
    """
    if not isinstance(value, str):
        raise InvalidAddress(f"not a string: got {type(value).__name__}")
    if len(value) != ADDRESS_LENGTH:
        raise InvalidAddress(f"must be {ADDRESS_LENGTH} characters: got {len(value)}")
    bad = [c for c in value if c not in _BASE58_INDEX]
    if bad:
        raise InvalidAddress(f"not valid base58: {bad[0]!r} is not a base58 character")
    data = _b58decode(value)
    payload, checksum = data[:-4], data[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise InvalidAddress("bad checksum")
    if len(payload) != 1 + 20:
        raise InvalidAddress(f"not a Neo N3 address (holds {len(payload)} bytes, expected 21)")
    if payload[0] != ADDRESS_VERSION:
        raise InvalidAddress(
            f"not a Neo N3 address (version byte 0x{payload[0]:02x}, "
            f"expected 0x{ADDRESS_VERSION:02x})"
        )
    return value


def address_to_script_hash(address: str) -> UInt160:
    """The account's script hash.

    Raises:
        InvalidAddress: as ``validate_address``.
    """
    validate_address(address)
    return UInt160(_b58decode(address)[1:21])


def script_hash_to_address(h: UInt160) -> str:
    """The Neo N3 address of a script hash."""
    return str(wallet_utils.script_hash_to_address(h, ADDRESS_VERSION))
