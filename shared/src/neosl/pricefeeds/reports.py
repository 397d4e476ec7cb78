"""Signed price reports: a round's facts in bytes a Neo contract can check and read.

A report is a round of a feed written with Neo's binary serialization
(``neosl.neo.binary``, what ``StdLib.deserialize`` reads) as one Array:

    [version, feed_id, pair, price, decimals, round_id, timestamp_ms, sources_used]

``pair`` is the UTF-8 ``BASE/QUOTE``, ``price`` an integer scaled by ``10**decimals``, and
``timestamp_ms`` when the round was priced (Unix milliseconds). The signature is ECDSA on
secp256r1 over SHA-256 of those bytes, 64 bytes r‖s: what the native
``CryptoLib.verifyWithECDsa(report, public_key, signature, 23)`` accepts
(``NamedCurveHash.secp256r1SHA256``), so a consumer contract verifies a report and reads its
fields in two native calls.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from neosl.config import ConfigError, Settings
from neosl.neo import binary

VERSION = 1
DECIMALS = 8
# CryptoLib's NamedCurveHash for secp256r1 with SHA-256.
SECP256R1_SHA256 = 23
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class ReportError(ValueError):
    """Bytes that are not a report of this version."""


@dataclass(frozen=True)
class Report:
    feed_id: int
    pair: str
    price: int  # scaled by 10**decimals
    decimals: int
    round_id: int
    timestamp_ms: int
    sources_used: int

    @classmethod
    def of(
        cls,
        feed_id: int,
        pair: str,
        price: Decimal,
        round_id: int,
        timestamp_ms: int,
        sources_used: int,
        decimals: int = DECIMALS,
    ) -> Report:
        """The report of a priced round (``price`` scaled to ``decimals``, rounded down)."""
        scaled = int((price * (Decimal(10) ** decimals)).to_integral_value(rounding="ROUND_FLOOR"))
        return cls(feed_id, pair, scaled, decimals, round_id, timestamp_ms, sources_used)

    def to_bytes(self) -> bytes:
        return binary.dumps(
            [
                VERSION,
                self.feed_id,
                self.pair.encode("utf-8"),
                self.price,
                self.decimals,
                self.round_id,
                self.timestamp_ms,
                self.sources_used,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Report:
        """Raises: ReportError: not a report of this version."""
        try:
            item = binary.loads(data, max_items=16)
        except binary.SerializationError as exc:
            raise ReportError(f"not a report: {exc}") from None
        if not isinstance(item, list) or len(item) != 8 or item[0] != VERSION:
            raise ReportError(f"not a version {VERSION} report")
        _version, feed_id, pair, *rest = item
        numbers = [feed_id, *rest]
        if not isinstance(pair, bytes) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in numbers
        ):
            raise ReportError("a report's fields have the wrong types")
        ints = [n for n in numbers if isinstance(n, int)]
        try:
            text = pair.decode("utf-8")
        except UnicodeDecodeError:
            raise ReportError("a report's pair is not UTF-8") from None
        return cls(ints[0], text, *ints[1:])


@dataclass(frozen=True)
class ReportKey:
    """The key reports are signed with: ``id`` names it (rotation), ``private`` is the
    32-byte secp256r1 scalar."""

    id: str
    private: bytes

    def __repr__(self) -> str:
        return f"ReportKey(id={self.id!r})"

    @cached_property
    def _key(self) -> ec.EllipticCurvePrivateKey:
        # Derived once per key: a round's signature is on the worker's hot path.
        number = int.from_bytes(self.private, "big")
        if len(self.private) != 32 or not 0 < number < _ORDER:
            raise ValueError("a report key is a 32-byte secp256r1 scalar")
        return ec.derive_private_key(number, ec.SECP256R1())

    @cached_property
    def public_key(self) -> bytes:
        """The compressed public key (33 bytes), as a contract stores it."""
        return self._key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)

    def sign(self, report: bytes) -> bytes:
        """r‖s (64 bytes) over SHA-256 of ``report``."""
        r, s = decode_dss_signature(self._key.sign(report, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(report: bytes, signature: bytes, public_key: bytes) -> bool:
    """Whether ``signature`` (r‖s) signs ``report`` for the compressed ``public_key``."""
    if len(signature) != 64:
        return False
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, report, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def report_key(settings: Settings) -> ReportKey | None:
    """The key rounds' reports are signed with (``NSL_REPORT_KEY``); None when not set.

    Raises:
        ConfigError: the key is not a secp256r1 scalar.
    """
    if settings.report_key is None:
        return None
    return _checked_key(settings.report_key.id, settings.report_key.key)


@lru_cache(maxsize=4)
def _checked_key(key_id: str, private: bytes) -> ReportKey:
    """One ``ReportKey`` per configured key and process, its scalar checked once."""
    key = ReportKey(key_id, private)
    try:
        key.public_key  # noqa: B018 - checks the scalar
    except ValueError:
        raise ConfigError("NSL_REPORT_KEY is not a secp256r1 private key") from None
    return key


def new_report_key(key_id: str = "reports1") -> str:
    """A fresh ``NSL_REPORT_KEY`` value: ``ID:KEY``, the scalar in url-safe base64."""
    while True:
        private = secrets.token_bytes(32)
        if 0 < int.from_bytes(private, "big") < _ORDER:
            return f"{key_id}:{base64.urlsafe_b64encode(private).decode()}"
