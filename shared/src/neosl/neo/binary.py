"""Neo's binary serialization of stack items, as the native ``StdLib.serialize`` writes and
``StdLib.deserialize`` reads them: what a contract can turn back into values in one call.

Each item is a type byte and its data:

- Integer ``0x21``: a var-int length, then the value's minimal two's-complement bytes,
  little-endian (zero is no bytes);
- ByteString ``0x28``: a var-int length, then the bytes;
- Boolean ``0x20``: one byte, 0 or 1;
- Array ``0x40``: a var-int count, then the items.

Only these types are written (a report needs no more); ``loads`` refuses any other type.
"""

from __future__ import annotations

from collections.abc import Sequence

INTEGER = 0x21
BYTE_STRING = 0x28
BOOLEAN = 0x20
ARRAY = 0x40
# The VM's limit on an integer: 32 bytes.
MAX_INTEGER_BYTES = 32

Item = int | bytes | bool | Sequence["Item"]


class SerializationError(ValueError):
    """Bytes that are not a serialized item of the types read here, or a value that cannot be
    written."""


def dumps(item: Item) -> bytes:
    """The serialization of ``item`` (an int, bytes, a bool or a sequence of those; a str is
    written as its UTF-8 bytes)."""
    out = bytearray()
    _write(out, item)
    return bytes(out)


def _write(out: bytearray, item: Item | str) -> None:
    if isinstance(item, bool):
        out += bytes([BOOLEAN, 1 if item else 0])
    elif isinstance(item, int):
        data = integer_bytes(item)
        out += bytes([INTEGER]) + var_int(len(data)) + data
    elif isinstance(item, str):
        data = item.encode("utf-8")
        out += bytes([BYTE_STRING]) + var_int(len(data)) + data
    elif isinstance(item, bytes | bytearray):
        out += bytes([BYTE_STRING]) + var_int(len(item)) + bytes(item)
    elif isinstance(item, Sequence):
        out += bytes([ARRAY]) + var_int(len(item))
        for inner in item:
            _write(out, inner)
    else:
        raise SerializationError(f"cannot serialize a {type(item).__name__}")


def integer_bytes(value: int) -> bytes:
    """A BigInteger as Neo stores it: minimal two's complement, little-endian; 0 is empty."""
    if value == 0:
        return b""
    length = (value.bit_length() + 8) // 8  # room for the sign bit
    data = value.to_bytes(length, "little", signed=True)
    # Drop a redundant sign byte (0x00 after a clear high bit, 0xff after a set one).
    while len(data) > 1 and (
        (data[-1] == 0x00 and data[-2] < 0x80) or (data[-1] == 0xFF and data[-2] >= 0x80)
    ):
        data = data[:-1]
    if len(data) > MAX_INTEGER_BYTES:
        raise SerializationError(f"an integer of {len(data)} bytes is over the VM's 32")
    return data


def var_int(n: int) -> bytes:
    if n < 0:
        raise SerializationError("a length cannot be negative")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def loads(data: bytes, *, max_items: int = 2048) -> int | bytes | bool | list[object]:
    """The item ``data`` serializes (ByteString as bytes, Array as a list).

    Raises:
        SerializationError: truncated, trailing bytes, another type, or over ``max_items``.
    """
    reader = _Reader(data, max_items)
    item = reader.item()
    if reader.at != len(data):
        raise SerializationError(f"{len(data) - reader.at} bytes after the item")
    return item


class _Reader:
    def __init__(self, data: bytes, max_items: int) -> None:
        self.data = data
        self.at = 0
        self.left = max_items

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise SerializationError("truncated")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def var_int(self) -> int:
        first = self.take(1)[0]
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        return int.from_bytes(self.take(size), "little")

    def item(self) -> int | bytes | bool | list[object]:
        self.left -= 1
        if self.left < 0:
            raise SerializationError("too many items")
        kind = self.take(1)[0]
        if kind == BOOLEAN:
            return self.take(1)[0] != 0
        if kind == INTEGER:
            size = self.var_int()
            if size > MAX_INTEGER_BYTES:
                raise SerializationError("an integer over 32 bytes")
            return int.from_bytes(self.take(size), "little", signed=True) if size else 0
        if kind == BYTE_STRING:
            return self.take(self.var_int())
        if kind == ARRAY:
            return [self.item() for _ in range(self.var_int())]
        raise SerializationError(f"stack item type 0x{kind:02x} is not read here")
