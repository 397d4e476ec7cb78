"""Tenant secrets at rest: envelope encryption with AES-256-GCM.

Every version of a secret gets its own random 32-byte data key, which encrypts the value
(``Secret.value`` = base64(nonce ‖ ciphertext)). The data key is wrapped by the current
master key (the first of ``NSL_SECRETS_KEY``) and stored next to it
(``Secret.wrapped_key``, same layout) with that master key's id (``Secret.master_key_id``).
Rotating the master key therefore re-wraps 32-byte data keys, never values
(``rotate_master_key``).

Both ciphertexts carry associated data naming the tenant, the secret's name and its version,
so a row copied to another tenant or name, or an older version put back, fails
authentication instead of decrypting.

Plaintext and keys never appear in a log line or an exception message here; errors name the
row (tenant, name, version) and the master key's id only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neosl.config import MasterKey
from neosl.models import Secret, Trigger

# The name rule of db/schema.sql (secrets_name_format); no ':' keeps the associated data
# unambiguous.
NAME_PATTERN = r"^[A-Za-z0-9_]{1,100}$"
MAX_NAME_LENGTH = 100
# A value's size limit, in bytes of UTF-8.
MAX_VALUE_BYTES = 4096

_NAME = re.compile(NAME_PATTERN)
_AAD_PREFIX = b"neosl-secret:v1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: its master key is not configured, or the row
    was altered, copied to another tenant or name, or set back to another version.

    The message names the row and the master key's id, never a value or a key.
    """


@dataclass(frozen=True)
class Sealed:
    """What ``seal`` stores: the columns ``value``, ``wrapped_key`` and ``master_key_id``."""

    value: str
    wrapped_key: str = field(repr=False)
    master_key_id: str


@dataclass(frozen=True)
class Rewrapped:
    """A data key wrapped again: the new ``wrapped_key`` and ``master_key_id``."""

    wrapped_key: str = field(repr=False)
    master_key_id: str


def valid_name(name: object) -> bool:
    """Whether ``name`` may name a secret (``NAME_PATTERN``)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def utf8(text: str) -> bytes | None:
    """``text`` as UTF-8, or None if it holds lone surrogates (JSON allows "\\ud800").

    Callers check sizes with it: the encode error would carry the whole text along.
    """
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def seal(
    keys: Sequence[MasterKey], user_id: int, name: str, version: int, plaintext: str
) -> Sealed:
    """Encrypt ``plaintext`` as version ``version`` of the tenant's secret ``name``.

    A fresh data key and fresh nonces every call: two seals of one value differ.

    Raises:
        ValueError: no master key, a name outside ``NAME_PATTERN``, or a plaintext that is
            not Unicode text (lone surrogates); the message never contains the plaintext.
    """
    if not keys:
        raise ValueError("no master key configured (NSL_SECRETS_KEY)")
    raw = utf8(plaintext)
    if raw is None:
        raise ValueError("the secret value is not valid Unicode text")
    master = keys[0]
    data_key = AESGCM.generate_key(bit_length=_KEY_BYTES * 8)
    value = _encrypt(data_key, raw, _aad("value", user_id, name, version))
    wrapped = _encrypt(master.key, data_key, _aad("key", user_id, name, version))
    return Sealed(value, wrapped, master.id)


def open_(
    keys: Sequence[MasterKey],
    user_id: int,
    name: str,
    version: int,
    value: str,
    wrapped_key: str,
    master_key_id: str,
) -> str:
    """The plaintext of a stored secret.

    Raises:
        SecretUnreadable: ``master_key_id`` is not among ``keys``, or the wrapped key or the
            value fails authentication (altered, or stored under another tenant, name or
            version).
    """
    data_key = _unwrap(keys, user_id, name, version, wrapped_key, master_key_id)
    plaintext = _decrypt(data_key, value, _aad("value", user_id, name, version))
    if plaintext is None:
        raise SecretUnreadable(
            f"{_row(user_id, name, version)}: the value fails authentication (altered, or "
            "copied from another tenant, name or version)"
        )
    text: str | None
    try:
        text = plaintext.decode()
    except UnicodeDecodeError:
        # Raised outside this block: the decode error holds the plaintext bytes, and a
        # traceback must not carry them along. seal() wrote a str, so this means a bug.
        text = None
    if text is None:
        raise SecretUnreadable(f"{_row(user_id, name, version)}: not UTF-8 text")
    return text


def rewrap(
    keys: Sequence[MasterKey],
    user_id: int,
    name: str,
    version: int,
    wrapped_key: str,
    master_key_id: str,
) -> Rewrapped:
    """The row's data key wrapped by the current (first) master key; the value is untouched.

    Raises:
        SecretUnreadable: ``master_key_id`` is not among ``keys`` or the wrapped key fails
            authentication.
    """
    data_key = _unwrap(keys, user_id, name, version, wrapped_key, master_key_id)
    master = keys[0]
    return Rewrapped(_encrypt(master.key, data_key, _aad("key", user_id, name, version)), master.id)


def granted_secrets(
    session: Session, keys: Sequence[MasterKey], user_id: int, names: Collection[str]
) -> dict[str, str]:
    """The tenant's secrets among ``names``, decrypted: name → plaintext.

    Names the tenant has no secret for are simply missing from the result.

    Raises:
        SecretUnreadable: one of them cannot be decrypted (see ``open_``).
    """
    wanted = sorted({n for n in names if valid_name(n)})
    if not wanted:
        return {}
    rows = session.scalars(
        select(Secret).where(Secret.user_id == user_id, Secret.name.in_(wanted))
    ).all()
    return {
        row.name: open_(
            keys, user_id, row.name, row.version, row.value, row.wrapped_key, row.master_key_id
        )
        for row in rows
    }


@dataclass(frozen=True)
class Unreadable:
    """A row rotation had to leave as it was, and why (no value or key in it)."""

    secret_id: int
    user_id: int
    name: str
    master_key_id: str
    reason: str


@dataclass(frozen=True)
class Rotation:
    rewrapped: int
    # Rows still under another master key than the current one after the run.
    remaining: int
    # Row counts per master key id that NSL_SECRETS_KEY does not configure (left alone).
    unknown_keys: dict[str, int]
    # Rows under a configured old key whose wrapped key fails authentication (left alone).
    unreadable: list[Unreadable]


def rotate_master_key(
    session: Session, keys: Sequence[MasterKey], *, batch_size: int = 200
) -> Rotation:
    """Re-wrap every data key held by an old (configured, not first) master key: tenant
    secrets' and webhook triggers' signing secrets'.

    Commits after each batch of ``batch_size`` rows, which are locked (FOR UPDATE) while
    they are re-wrapped: a concurrent write of the same secret waits for the batch, or the
    batch waits for it and then skips the row if it is under the current key by then. An
    interrupted run keeps the batches it committed; running it again continues, and
    re-wraps nothing once every row is under the current key. Values are not touched.

    Rows under master key ids that ``keys`` does not contain, and rows that fail
    authentication, are left exactly as they are and reported.

    Raises:
        ValueError: no master key or ``batch_size`` below 1.
    """
    if not keys:
        raise ValueError("no master key configured (NSL_SECRETS_KEY)")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    current = keys[0].id
    old = [k.id for k in keys[1:]]
    rewrapped = 0
    unreadable: list[Unreadable] = []
    counts: dict[str, int] = {}
    for holder in _HOLDERS:
        done, failed = _rewrap_rows(session, keys, old, batch_size, holder)
        rewrapped += done
        unreadable += failed
        for key_id, n in session.execute(
            select(holder.master_key_id, func.count())
            .where(holder.master_key_id != current)
            .group_by(holder.master_key_id)
        ).all():
            if key_id is not None:
                counts[key_id] = counts.get(key_id, 0) + n
    session.commit()
    configured = {k.id for k in keys}
    unknown = {key_id: n for key_id, n in sorted(counts.items()) if key_id not in configured}
    return Rotation(rewrapped, sum(counts.values()), unknown, unreadable)


def webhook_secret_name(trigger_id: int) -> str:
    """The name a webhook trigger's signing secret is sealed under (version: hook_version)."""
    return f"webhook_{trigger_id}"


@dataclass(frozen=True)
class _Holder:
    """A table holding sealed data keys: how to read a row's seal and store a new wrap."""

    model: Any
    master_key_id: Any  # the column
    seal: Callable[[Any], tuple[int, str, int, str, str]]  # user, name, version, wrapped, key id
    store: Callable[[Any, Rewrapped], None]


def _store_secret(row: Secret, new: Rewrapped) -> None:
    row.wrapped_key = new.wrapped_key
    row.master_key_id = new.master_key_id


def _store_hook(row: Trigger, new: Rewrapped) -> None:
    row.hook_wrapped_key = new.wrapped_key
    row.hook_master_key_id = new.master_key_id


_HOLDERS = (
    _Holder(
        Secret,
        Secret.master_key_id,
        lambda r: (r.user_id, r.name, r.version, r.wrapped_key, r.master_key_id),
        _store_secret,
    ),
    # Webhook triggers' signing secrets.
    _Holder(
        Trigger,
        Trigger.hook_master_key_id,
        lambda r: (
            r.user_id,
            webhook_secret_name(r.id),
            r.hook_version,
            r.hook_wrapped_key or "",
            r.hook_master_key_id or "",
        ),
        _store_hook,
    ),
)


def _rewrap_rows(
    session: Session, keys: Sequence[MasterKey], old: list[str], batch_size: int, h: _Holder
) -> tuple[int, list[Unreadable]]:
    rewrapped = 0
    unreadable: list[Unreadable] = []
    after = 0
    while old:
        batch = session.scalars(
            select(h.model)
            .where(h.master_key_id.in_(old), h.model.id > after)
            .order_by(h.model.id)
            .limit(batch_size)
            .with_for_update()
        ).all()
        if not batch:
            break
        for row in batch:
            user_id, name, version, wrapped, key_id = h.seal(row)
            try:
                new = rewrap(keys, user_id, name, version, wrapped, key_id)
            except SecretUnreadable as exc:
                unreadable.append(Unreadable(row.id, user_id, name, key_id, str(exc)))
                continue
            h.store(row, new)
            rewrapped += 1
        after = batch[-1].id
        session.commit()
    return rewrapped, unreadable


def _aad(part: str, user_id: int, name: str, version: int) -> bytes:
    if not valid_name(name):
        raise ValueError("secret name must be 1-100 of A-Z a-z 0-9 _")
    return _AAD_PREFIX + f"{part}:{int(user_id)}:{name}:{int(version)}".encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad)).decode("ascii")


def _decrypt(key: bytes, stored: str, aad: bytes) -> bytes | None:
    """The plaintext, or None if ``stored`` is malformed or fails authentication."""
    try:
        raw = base64.b64decode(stored.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        return None
    try:
        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
    except InvalidTag:
        return None


def _unwrap(
    keys: Sequence[MasterKey],
    user_id: int,
    name: str,
    version: int,
    wrapped_key: str,
    master_key_id: str,
) -> bytes:
    if not valid_name(name):
        raise SecretUnreadable(f"{name!r} is not a valid secret name")
    master = next((k for k in keys if k.id == master_key_id), None)
    if master is None:
        raise SecretUnreadable(
            f"{_row(user_id, name, version)} is wrapped by master key {master_key_id!r}, "
            "which NSL_SECRETS_KEY does not configure"
        )
    data_key = _decrypt(master.key, wrapped_key, _aad("key", user_id, name, version))
    if data_key is None or len(data_key) != _KEY_BYTES:
        raise SecretUnreadable(
            f"{_row(user_id, name, version)}: its data key fails authentication under master "
            f"key {master_key_id!r} (altered, or copied from another tenant, name or version)"
        )
    return data_key


def _row(user_id: int, name: str, version: int) -> str:
    return f"secret {name!r} of tenant {user_id} (version {version})"
