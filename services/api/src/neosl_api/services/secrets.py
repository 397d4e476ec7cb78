"""Tenant secrets: store a value encrypted (a new version per write), list, read, delete.

Values are sealed by ``neosl.functions.secretbox`` before they reach the database and are never read
back here: only the executor decrypts them (``secretbox.granted_secrets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.config import MasterKey
from neosl.errors import Conflict, InvalidInput, NotFound
from neosl.functions import secretbox
from neosl.models import Secret
from neosl_api.pagination import Page, paginate
from neosl_api.tenancy import owned_by

_NAME_RULE = "1-100 characters of letters, digits and '_'."
_ROUNDS = 3


@dataclass(frozen=True)
class Stored:
    secret: Secret
    created: bool  # False: a new version of an existing secret


def put_secret(
    session: Session, keys: Sequence[MasterKey], user_id: int, name: str, value: str
) -> Stored:
    """Create the tenant's secret ``name`` (version 1) or store a new version of it.

    Each version is sealed with a new data key. Concurrent writes of one name are decided
    one after the other by the row lock; the first of two creations wins and the other
    becomes version 2.

    Raises:
        InvalidInput: an invalid name, or a value that is not a string of at most
            ``secretbox.MAX_VALUE_BYTES`` bytes.
        Conflict: the name was created and deleted again by concurrent requests throughout.
    """
    _check_name(name)
    raw = secretbox.utf8(value) if isinstance(value, str) else None
    if raw is None or len(raw) > secretbox.MAX_VALUE_BYTES:
        message = f"the value must be text of at most {secretbox.MAX_VALUE_BYTES} bytes (UTF-8)"
        raise InvalidInput(message, {"value": [message]})
    # A concurrent creation that wins the INSERT leaves a row to lock on the next round.
    for _ in range(_ROUNDS):
        secret = session.scalars(_named(user_id, name).with_for_update()).one_or_none()
        if secret is not None:
            version = secret.version + 1
            sealed = secretbox.seal(keys, user_id, name, version, value)
            secret.version = version
            secret.value = sealed.value
            secret.wrapped_key = sealed.wrapped_key
            secret.master_key_id = sealed.master_key_id
            session.commit()
            return Stored(secret, created=False)
        sealed = secretbox.seal(keys, user_id, name, 1, value)
        created = session.scalars(
            insert(Secret)
            .values(
                user_id=user_id,
                name=name,
                version=1,
                value=sealed.value,
                wrapped_key=sealed.wrapped_key,
                master_key_id=sealed.master_key_id,
            )
            .on_conflict_do_nothing(index_elements=[Secret.user_id, Secret.name])
            .returning(Secret)
        ).one_or_none()
        if created is not None:
            session.commit()
            return Stored(created, created=True)
    # Only a secret created and deleted again between every round ends up here.
    raise Conflict(f"secret {name!r} is being changed concurrently; try again")


def list_secrets(session: Session, user_id: int, limit: int, cursor: str | None) -> Page[Secret]:
    """The tenant's secrets (names and versions), newest first.

    Raises:
        InvalidInput: ``limit`` out of range or a malformed ``cursor``.
    """
    return paginate(session, owned_by(Secret, user_id), Secret.id, limit=limit, cursor=cursor)


def get_secret(session: Session, user_id: int, name: str) -> Secret:
    """The tenant's secret ``name`` (the row; callers show its name and version only).

    Raises:
        InvalidInput: an invalid name.
        NotFound: the tenant has no such secret (another tenant's answers the same).
    """
    _check_name(name)
    secret = session.scalars(_named(user_id, name)).one_or_none()
    if secret is None:
        raise _not_found(name)
    return secret


def delete_secret(session: Session, user_id: int, name: str) -> None:
    """Delete the tenant's secret ``name``; functions granted it no longer receive it.

    Raises:
        InvalidInput: an invalid name.
        NotFound: the tenant has no such secret.
    """
    _check_name(name)
    deleted = session.scalars(
        delete(Secret).where(Secret.user_id == user_id, Secret.name == name).returning(Secret.id)
    ).one_or_none()
    if deleted is None:
        raise _not_found(name)
    session.commit()


def _named(user_id: int, name: str) -> Select[Secret]:
    return owned_by(Secret, user_id).where(Secret.name == name)


def _check_name(name: object) -> None:
    if not secretbox.valid_name(name):
        raise InvalidInput(f"invalid secret name: {_NAME_RULE}", {"name": [_NAME_RULE]})


def _not_found(name: str) -> NotFound:
    return NotFound(f"secret {name!r} not found")
