"""Neo N3 address validation and conversion."""

from __future__ import annotations

import hashlib

import pytest
from neo3.core.types import UInt160

from neosl.neo.addresses import (
    InvalidAddress,
    address_to_script_hash,
    script_hash_to_address,
    validate_address,
)

# Recorded from a neo-go node: getblock shows this sender for signer 0x291b…1f9b.
ADDRESS = "Na4BNjSyrBDRGESC877KoKD45yg5GWUxuW"
SCRIPT_HASH = "291bff0f48bf68ca4e023953fb065fb984431f9b"


def _base58check(payload: bytes) -> str:
    # Written out here rather than borrowed from the code under test.
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = alphabet[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + text


def test_valid_address_is_returned_unchanged() -> None:
    assert validate_address(ADDRESS) == ADDRESS


def test_script_hash_round_trip() -> None:
    h = address_to_script_hash(ADDRESS)
    assert h == UInt160.from_string(SCRIPT_HASH)
    assert script_hash_to_address(h) == ADDRESS


def test_zero_hash_is_a_valid_address() -> None:
    address = script_hash_to_address(UInt160.zero())
    assert validate_address(address) == address
    assert address_to_script_hash(address) == UInt160.zero()


@pytest.mark.parametrize("value", [123, None, ADDRESS.encode(), [ADDRESS]])
def test_wrong_type(value: object) -> None:
    with pytest.raises(InvalidAddress, match="not a string"):
        validate_address(value)


@pytest.mark.parametrize("value", ["", "Na4BNj", ADDRESS[:-1], ADDRESS + "a", f" {ADDRESS}"])
def test_wrong_length(value: str) -> None:
    with pytest.raises(InvalidAddress, match="must be 34 characters"):
        validate_address(value)


@pytest.mark.parametrize("char", ["0", "O", "I", "l", "+", "é"])
def test_not_base58(char: str) -> None:
    value = ADDRESS[:10] + char + ADDRESS[11:]
    with pytest.raises(InvalidAddress, match="not valid base58"):
        validate_address(value)


def test_bad_checksum() -> None:
    flipped = ADDRESS[:-1] + ("v" if ADDRESS[-1] != "v" else "w")
    with pytest.raises(InvalidAddress, match="bad checksum"):
        validate_address(flipped)
    with pytest.raises(InvalidAddress, match="bad checksum"):
        address_to_script_hash(flipped)


@pytest.mark.parametrize(
    ("address", "version"),
    [
        # A Neo Legacy (2.x) address; neo-go's validateaddress says it is not valid.
        ("AK2nJJpJr6o664CWJKi1QRXjqeic2zRp8y", "0x17"),
        (_base58check(b"\x00" + bytes.fromhex(SCRIPT_HASH)), "0x00"),
    ],
)
def test_other_version_byte(address: str, version: str) -> None:
    assert len(address) == 34
    with pytest.raises(InvalidAddress, match=rf"not a Neo N3 address \(version byte {version}"):
        validate_address(address)


def test_wrong_payload_length() -> None:
    # 34 base58 characters with a good checksum, but 22 bytes inside instead of 21.
    address = _base58check(b"\x00\x01" + bytes(range(20)))
    assert len(address) == 34
    with pytest.raises(InvalidAddress, match=r"not a Neo N3 address \(holds 22 bytes"):
        validate_address(address)


def test_invalid_address_is_a_value_error() -> None:
    assert issubclass(InvalidAddress, ValueError)
