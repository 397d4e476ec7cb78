"""Signed wallet messages: proof that whoever asks to register a Neo N3 address holds its key.

Wallets (NeoLine ``signMessage`` / ``signMessageWithoutSalt``, neon-dappkit's ``NeonSigner``
in its CLASSIC and WITHOUT_SALT versions) sign not the text itself but the text wrapped as

    01 00 01 f0 | var-int length of payload | payload | 00 00

where the payload is the UTF-8 text, or ``salt + message`` (string concatenation) when the
wallet adds a salt. The signature is ECDSA on secp256r1 over SHA-256 of those bytes, 64 bytes
r‖s; the key is a compressed secp256r1 point. neon-js builds the payload with
``u.str2hexstring``, one byte per UTF-16 code unit, which equals UTF-8 only for ASCII: keep
challenge texts ASCII so that every wallet signs the same bytes.

Everything a tenant sends is checked here and refused with ``InvalidProof`` whose message
says what is wrong; lengths are capped before any decoding or curve arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neo3.contracts import utils as contract_utils
from neo3.core import cryptography, serialization
from neo3.core import utils as core_utils
from neo3.wallet.account import Account

from neosl.neo.addresses import InvalidAddress, script_hash_to_address, validate_address

_PREFIX = bytes.fromhex("010001f0")
_SUFFIX = bytes.fromhex("0000")
PUBLIC_KEY_BYTES = 33
SIGNATURE_BYTES = 64
MAX_SALT_CHARS = 256
# Far longer than any challenge we issue; keeps hashing of tenant input bounded.
MAX_MESSAGE_CHARS = 4096

_HEX = re.compile(r"[0-9a-fA-F]*")


class InvalidProof(ValueError):
    """A signed message does not prove ownership of the address; the message says why."""


@dataclass(frozen=True)
class SignedMessage:
    """What a wallet hands back after signing: enough to call ``verify_ownership``."""

    address: str
    public_key: str
    signature: str
    salt: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The JSON body of ``POST /v1/gas/accounts``; ``salt`` only when there is one."""
        body = {"address": self.address, "public_key": self.public_key, "signature": self.signature}
        if self.salt is not None:
            body["salt"] = self.salt
        return body


def wallet_message_bytes(message: str, salt: str | None = None) -> bytes:
    """The bytes a wallet signs for ``message`` (with ``salt`` in front when given).

    Raises:
        UnicodeEncodeError: ``message`` or ``salt`` holds a lone surrogate (not UTF-8 text).
    """
    payload = ((salt or "") + message).encode("utf-8")
    with serialization.BinaryWriter() as writer:
        writer.write_bytes(_PREFIX)
        # Neo's var-int: the length in bytes of the payload, not in characters.
        writer.write_var_bytes(payload)
        writer.write_bytes(_SUFFIX)
        return bytes(writer.to_array())


def _hex_bytes(what: str, value: object, expected: int) -> bytes:
    """``value`` decoded from exactly ``expected`` bytes of hex, or InvalidProof saying why."""
    if not isinstance(value, str):
        raise InvalidProof(f"{what} must be a hex string: got {type(value).__name__}")
    # Refuse a huge string before scanning it.
    if len(value) > 4 * expected:
        raise InvalidProof(
            f"{what} must be {expected} bytes ({2 * expected} hex characters): "
            f"got {len(value)} characters"
        )
    if not _HEX.fullmatch(value):
        raise InvalidProof(f"{what} is not hex: only 0-9 and a-f are allowed")
    if len(value) % 2:
        raise InvalidProof(f"{what} has an odd number of hex digits ({len(value)})")
    if len(value) != 2 * expected:
        raise InvalidProof(f"{what} must be {expected} bytes: got {len(value) // 2} bytes")
    return bytes.fromhex(value)


def _public_key(public_key_hex: object) -> cryptography.ECPoint:
    """The secp256r1 point of a compressed public key given as hex.

    Raises:
        InvalidProof: not 33 bytes of hex, not a compressed key (02/03 first), or not a
            point on secp256r1.
    """
    if (
        isinstance(public_key_hex, str)
        and len(public_key_hex) == 130
        and public_key_hex[:2] == "04"
    ):
        raise InvalidProof("public key must be compressed (33 bytes, 02 or 03 first): got 65 bytes")
    key = _hex_bytes("public key", public_key_hex, PUBLIC_KEY_BYTES)
    if key[0] not in (2, 3):
        raise InvalidProof(f"public key must be compressed (first byte 02 or 03): got {key[0]:02x}")
    try:
        point: cryptography.ECPoint = cryptography.ECPoint.deserialize_from_bytes(key)
    except (cryptography.ECCException, ValueError) as exc:
        raise InvalidProof("public key is not a point on secp256r1") from exc
    return point


def _address_of_point(point: cryptography.ECPoint) -> str:
    # The single-signature verification script: 0c21 <key> 41 56e7b327 (System.Crypto.CheckSig).
    script = contract_utils.create_signature_redeemscript(point)
    return script_hash_to_address(core_utils.to_script_hash(script))


def address_of_public_key(public_key_hex: str) -> str:
    """The Neo N3 address of the single-signature account of a compressed public key.

    Raises:
        InvalidProof: the key is not 33 bytes of hex, not compressed or not on secp256r1.
    """
    return _address_of_point(_public_key(public_key_hex))


def verify_ownership(
    address: str,
    message: str,
    public_key_hex: str,
    signature_hex: str,
    salt: str | None = None,
) -> None:
    """Return only if ``public_key_hex`` is the key of ``address`` and signed ``message``.

    The signature is checked over ``wallet_message_bytes(message, salt)``; low-s and high-s
    forms are both accepted, as wallets produce either.

    Raises:
        InvalidProof: an input is malformed (not a string, too long, bad hex, wrong length,
            key not compressed or not on the curve, invalid address), the key is not the
            address's, or the signature does not verify. No other exception escapes.
    """
    try:
        validate_address(address)
    except InvalidAddress as exc:
        raise InvalidProof(f"not a Neo N3 address: {exc}") from exc
    if not isinstance(message, str):
        raise InvalidProof(f"message must be a string: got {type(message).__name__}")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidProof(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    if salt is not None and not isinstance(salt, str):
        raise InvalidProof(f"salt must be a string: got {type(salt).__name__}")
    if salt is not None and len(salt) > MAX_SALT_CHARS:
        raise InvalidProof(f"salt is longer than {MAX_SALT_CHARS} characters")
    key = _public_key(public_key_hex)
    signature = _hex_bytes("signature", signature_hex, SIGNATURE_BYTES)
    key_address = _address_of_point(key)
    if key_address != address:
        raise InvalidProof(f"public key belongs to {key_address}, not to {address}")
    try:
        signed = wallet_message_bytes(message, salt)
    except UnicodeEncodeError as exc:
        raise InvalidProof("message or salt is not valid Unicode text") from exc
    try:
        valid = cryptography.verify_signature(signed, signature, key.encode_point(True))
    except (cryptography.ECCException, ValueError) as exc:
        raise InvalidProof(f"signature cannot be checked: {exc}") from exc
    if not valid:
        raise InvalidProof("signature does not verify for this message, salt and public key")


def sign_message(wif: str, message: str, salt: str | None = None) -> SignedMessage:
    """Sign ``message`` as a wallet would, with the key in ``wif``.

    For the dev chain and tests: a real tenant signs in their wallet and never sends a key.

    Raises:
        ValueError: ``wif`` is not a WIF private key (or its key is out of range).
        UnicodeEncodeError: ``message`` or ``salt`` is not UTF-8 text.
    """
    try:
        account = Account.from_wif(wif)
    except (ValueError, cryptography.ECCException) as exc:
        raise ValueError(f"not a usable WIF key: {exc}") from exc
    signed = wallet_message_bytes(message, salt)
    signature: bytes = account.sign(signed)
    return SignedMessage(
        address=str(account.address),
        public_key=str(account.public_key),
        signature=signature.hex(),
        salt=salt,
    )
