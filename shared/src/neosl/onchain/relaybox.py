"""Tenants' signer keys at rest: sealed to the relay's X25519 key.

The relay (the gasbank) holds the private key (``NSL_RELAY_KEY``); every other
service that may create a tenant's signer holds only its public key
(``NSL_RELAY_PUBLIC_KEY``). A signer's private key is sealed on creation, like a sealed box:
an ephemeral X25519 key agrees a secret with the relay's public key, HKDF-SHA256 turns it
into an AES-256-GCM key, and the stored value is ``base64(ephemeral public key ‖ nonce ‖
ciphertext)``. The creator forgets the ephemeral key and the signer's key at once, so after
that only the relay can open what it stored: the API (and the executor, which runs tenant
code) never can.

Associated data binds the ciphertext to its tenant and address: a row copied to another
tenant does not open.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from neosl.config import ConfigError, Settings

_INFO = b"neosl-signer-key:v1"
_AAD_PREFIX = b"neosl-signer:v1:"
_NONCE_BYTES = 12
_PUBLIC_BYTES = 32
_TAG_BYTES = 16


class SignerKeyUnreadable(Exception):
    """A sealed signer key does not open: another relay key, or an altered or copied row.

    The message names the tenant and the key id, never key material.
    """


@dataclass(frozen=True)
class RelayPublicKey:
    id: str
    key: bytes  # 32 bytes, raw X25519

    def __repr__(self) -> str:
        return f"RelayPublicKey(id={self.id!r})"


@dataclass(frozen=True)
class RelayKey:
    id: str
    key: bytes  # 32 bytes, raw X25519 private

    def __repr__(self) -> str:
        # Never print key material.
        return f"RelayKey(id={self.id!r})"

    @property
    def public(self) -> RelayPublicKey:
        private = X25519PrivateKey.from_private_bytes(self.key)
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return RelayPublicKey(self.id, raw)


def relay_key(settings: Settings) -> RelayKey | None:
    """The relay's private key (``NSL_RELAY_KEY``: the gasbank's), None when not set.

    Raises:
        ConfigError: ``NSL_RELAY_PUBLIC_KEY`` is set and is not its public half.
    """
    if settings.relay_key is None:
        return None
    key = RelayKey(settings.relay_key.id, settings.relay_key.key)
    given = settings.relay_public_key
    if given is not None and (given.id, given.key) != (key.public.id, key.public.key):
        raise ConfigError("NSL_RELAY_PUBLIC_KEY is not the public half of NSL_RELAY_KEY")
    return key


def relay_public_key(settings: Settings) -> RelayPublicKey | None:
    """The key tenants' signers are sealed to: ``NSL_RELAY_PUBLIC_KEY``, or the public half of
    ``NSL_RELAY_KEY``; None when neither is set.

    Raises:
        ConfigError: both are set and do not pair up.
    """
    private = relay_key(settings)
    if private is not None:
        return private.public
    given = settings.relay_public_key
    return RelayPublicKey(given.id, given.key) if given is not None else None


def new_relay_key() -> tuple[str, str]:
    """A fresh (private, public) pair as base64 text, for NSL_RELAY_KEY / NSL_RELAY_PUBLIC_KEY."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(raw_private), _b64(raw_public)


def seal(public: RelayPublicKey, plaintext: bytes, user_id: int, address: str) -> str:
    """``plaintext`` sealed to the relay's public key, bound to (tenant, address)."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public.key))
    key = _derive(shared, ephemeral_public, public.key)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(user_id, address))
    return base64.b64encode(ephemeral_public + nonce + ciphertext).decode("ascii")


def open_sealed(private: RelayKey, stored: str, user_id: int, address: str) -> bytes:
    """Raises:
    SignerKeyUnreadable: not sealed to this key, malformed, or bound to another row.
    """
    try:
        raw = base64.b64decode(stored.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) < _PUBLIC_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise SignerKeyUnreadable(f"the signer key of tenant {user_id} is malformed")
    ephemeral_public = raw[:_PUBLIC_BYTES]
    nonce = raw[_PUBLIC_BYTES : _PUBLIC_BYTES + _NONCE_BYTES]
    relay = X25519PrivateKey.from_private_bytes(private.key)
    shared = relay.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _derive(shared, ephemeral_public, private.public.key)
    try:
        return AESGCM(key).decrypt(
            nonce, raw[_PUBLIC_BYTES + _NONCE_BYTES :], _aad(user_id, address)
        )
    except InvalidTag:
        raise SignerKeyUnreadable(
            f"the signer key of tenant {user_id} does not open with relay key {private.id!r}"
        ) from None


def _derive(shared: bytes, ephemeral_public: bytes, relay_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + relay_public, info=_INFO
    ).derive(shared)


def _aad(user_id: int, address: str) -> bytes:
    return _AAD_PREFIX + f"{int(user_id)}:{address}".encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
