"""Proving a Neo N3 address is yours, from its key: a WIF or a NEP-6 wallet file.

The API registers a gas account only with a wallet's signature of its challenge
(``Gas.prove``). ``WalletKey.sign_message`` signs as NeoLine's ``signMessageWithoutSalt``
does: ECDSA on secp256r1 with SHA-256 over ``01 00 01 f0 | var-int length | text | 00 00``,
answered as 64 bytes r‖s in hex. The key never leaves this process.

Needs the ``wallet`` extra (``pip install 'neosl-client[wallet]'``: the cryptography package);
importing this module without it says so.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "neosl_client.wallet signs with the cryptography package: "
        "pip install 'neosl-client[wallet]'"
    ) from exc

_ADDRESS_VERSION = 0x35
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# The single-signature verification script: PUSHDATA1 33 <key> SYSCALL System.Crypto.CheckSig.
_CHECKSIG = bytes.fromhex("4156e7b327")
_MESSAGE_PREFIX = bytes.fromhex("010001f0")
_MESSAGE_SUFFIX = bytes.fromhex("0000")
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class WalletError(ValueError):
    """A key, a wallet file or a password that cannot be used; the message says why."""


@dataclass(frozen=True)
class WalletKey:
    """One account's private key, its compressed public key and its address."""

    private_key: bytes = field(repr=False)
    public_key_hex: str
    address: str

    @classmethod
    def from_private_key(cls, private_key: bytes) -> WalletKey:
        number = int.from_bytes(private_key, "big")
        if len(private_key) != 32 or not 0 < number < _CURVE_ORDER:
            raise WalletError("a private key is 32 bytes, between 1 and the curve's order")
        key = ec.derive_private_key(number, ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
        return cls(private_key, public.hex(), address_of_public_key(public))

    @classmethod
    def from_wif(cls, wif: str) -> WalletKey:
        """The key of a WIF (``K…`` or ``L…``, 52 characters)."""
        try:
            raw = _b58check_decode(wif.strip())
        except WalletError as exc:
            raise WalletError(f"not a WIF: {exc}") from None
        if len(raw) != 34 or raw[0] != 0x80 or raw[33] != 0x01:
            raise WalletError("not a WIF: expected 0x80, 32 key bytes and 0x01")
        return cls.from_private_key(raw[1:33])

    @classmethod
    def from_nep6(cls, path: str | Path, password: str, address: str | None = None) -> WalletKey:
        """The key of ``address`` (default: the wallet's default account, or its only one)
        in a NEP-6 wallet file, decrypted with ``password`` (NEP-2)."""
        try:
            wallet = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WalletError(f"cannot read the wallet file: {exc}") from None
        accounts = [a for a in wallet.get("accounts") or [] if isinstance(a, dict) and a.get("key")]
        if address is not None:
            chosen = [a for a in accounts if a.get("address") == address]
        else:
            chosen = [a for a in accounts if a.get("isDefault")] or accounts
        if len(chosen) != 1:
            what = f"no account {address} with a key" if address else "no single default account"
            raise WalletError(f"the wallet has {what}; name the address")
        scrypt = wallet.get("scrypt") or {}
        return cls.from_nep2(
            str(chosen[0]["key"]),
            password,
            n=int(scrypt.get("n", 16384)),
            r=int(scrypt.get("r", 8)),
            p=int(scrypt.get("p", 8)),
        )

    @classmethod
    def from_nep2(
        cls, encrypted: str, password: str, *, n: int = 16384, r: int = 8, p: int = 8
    ) -> WalletKey:
        """The key of a NEP-2 encrypted key (``6P…``).

        Raises:
            WalletError: not a NEP-2 key, or the password is wrong.
        """
        raw = _b58check_decode(encrypted.strip())
        if len(raw) != 39 or raw[:3] != b"\x01\x42\xe0":
            raise WalletError("not a NEP-2 encrypted key")
        address_hash, sealed = raw[3:7], raw[7:]
        derived = hashlib.scrypt(
            unicodedata.normalize("NFC", password).encode(),
            salt=address_hash,
            n=n,
            r=r,
            p=p,
            dklen=64,
            maxmem=256 * 1024 * 1024,
        )
        # NEP-2 specifies AES-256-ECB over the two 16-byte halves of the scrambled key.
        decryptor = Cipher(algorithms.AES(derived[32:]), modes.ECB()).decryptor()  # noqa: S305
        plain = decryptor.update(sealed) + decryptor.finalize()
        private = bytes(a ^ b for a, b in zip(plain, derived[:32], strict=True))
        try:
            key = cls.from_private_key(private)
        except WalletError:
            raise WalletError("wrong password for this key") from None
        if _sha256d(key.address.encode())[:4] != address_hash:
            raise WalletError("wrong password for this key")
        return key

    def sign_message(self, message: str, salt: str | None = None) -> str:
        """The signature (r‖s, hex) a wallet gives for ``message`` (``salt`` in front)."""
        key = ec.derive_private_key(int.from_bytes(self.private_key, "big"), ec.SECP256R1())
        der = key.sign(message_bytes(message, salt), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()


def message_bytes(message: str, salt: str | None = None) -> bytes:
    """What a wallet signs for ``message``: ``01 00 01 f0 | var-int | payload | 00 00``."""
    payload = ((salt or "") + message).encode("utf-8")
    return _MESSAGE_PREFIX + _var_int(len(payload)) + payload + _MESSAGE_SUFFIX


def address_of_public_key(public_key: bytes) -> str:
    """The address of the single-signature account of a compressed public key."""
    if len(public_key) != 33 or public_key[0] not in (2, 3):
        raise WalletError("a compressed public key is 33 bytes, 02 or 03 first")
    script = b"\x0c\x21" + public_key + _CHECKSIG
    script_hash = _ripemd160(hashlib.sha256(script).digest())
    return _b58check_encode(bytes([_ADDRESS_VERSION]) + script_hash)


def _var_int(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _b58check_encode(payload: bytes) -> str:
    data = payload + _sha256d(payload)[:4]
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def _b58check_decode(text: str) -> bytes:
    if not text or len(text) > 200:
        raise WalletError("empty or too long")
    number = 0
    for char in text:
        digit = _B58.find(char)
        if digit < 0:
            raise WalletError(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    pad = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    data = b"\0" * pad + body
    if len(data) < 5 or _sha256d(data[:-4])[:4] != data[-4:]:
        raise WalletError("bad checksum")
    return data[:-4]


def _ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:
        # OpenSSL 3 builds without the legacy provider have no RIPEMD-160.
        return _ripemd160_python(data)


# RIPEMD-160 (Dobbertin, Bosselaers, Preneel), for Pythons whose hashlib lacks it.
_R1 = [
    *range(16),
    7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
    3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
    1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
    4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
]  # fmt: skip
_R2 = [
    5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
    6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
    15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
    8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
    12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
]  # fmt: skip
_S1 = [
    11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
    7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
    11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
    11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
    9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
]  # fmt: skip
_S2 = [
    8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
    9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
    9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
    15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
    8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
]  # fmt: skip
_K1 = [0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E]
_K2 = [0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000]


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def _f(j: int, x: int, y: int, z: int) -> int:
    if j < 16:
        return x ^ y ^ z
    if j < 32:
        return (x & y) | (~x & z)
    if j < 48:
        return (x | ~y) ^ z
    if j < 64:
        return (x & z) | (y & ~z)
    return x ^ (y | ~z)


def _ripemd160_python(data: bytes) -> bytes:
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    padded = (
        data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    )
    for block in range(0, len(padded), 64):
        x = [int.from_bytes(padded[block + 4 * i : block + 4 * i + 4], "little") for i in range(16)]
        a1, b1, c1, d1, e1 = h
        a2, b2, c2, d2, e2 = h
        for j in range(80):
            t = (
                _rol(
                    (a1 + (_f(j, b1, c1, d1) & 0xFFFFFFFF) + x[_R1[j]] + _K1[j // 16]) & 0xFFFFFFFF,
                    _S1[j],
                )
                + e1
            ) & 0xFFFFFFFF
            a1, e1, d1, c1, b1 = e1, d1, _rol(c1, 10), b1, t
            t = (
                _rol(
                    (a2 + (_f(79 - j, b2, c2, d2) & 0xFFFFFFFF) + x[_R2[j]] + _K2[j // 16])
                    & 0xFFFFFFFF,
                    _S2[j],
                )
                + e2
            ) & 0xFFFFFFFF
            a2, e2, d2, c2, b2 = e2, d2, _rol(c2, 10), b2, t
        t = (h[1] + c1 + d2) & 0xFFFFFFFF
        h[1] = (h[2] + d1 + e2) & 0xFFFFFFFF
        h[2] = (h[3] + e1 + a2) & 0xFFFFFFFF
        h[3] = (h[4] + a1 + b2) & 0xFFFFFFFF
        h[4] = (h[0] + b1 + c2) & 0xFFFFFFFF
        h[0] = t
    return b"".join(v.to_bytes(4, "little") for v in h)
