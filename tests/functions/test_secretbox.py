"""Envelope encryption of tenant secrets (``neosl.functions.secretbox``), without a database."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest

from neosl.config import MasterKey, load_settings, new_key
from neosl.functions.secretbox import Sealed, SecretUnreadable, open_, rewrap, seal

PLAIN = "sk_live_7f3a9c-do-not-leak ✓"
OLD = MasterKey("old", os.urandom(32))
NEW = MasterKey("new", os.urandom(32))


def opened(
    keys: tuple[MasterKey, ...],
    sealed: Sealed,
    user_id: int = 7,
    name: str = "API_KEY",
    version: int = 1,
) -> str:
    return open_(
        keys, user_id, name, version, sealed.value, sealed.wrapped_key, sealed.master_key_id
    )


def unreadable(keys: tuple[MasterKey, ...], sealed: Sealed, **row: object) -> str:
    """The SecretUnreadable message for opening ``sealed`` as ``row``; never the plaintext."""
    args = {"user_id": 7, "name": "API_KEY", "version": 1, **row}
    with pytest.raises(SecretUnreadable) as info:
        opened(keys, sealed, **args)  # type: ignore[arg-type]
    message = str(info.value)
    assert PLAIN not in message
    assert PLAIN not in repr(info.value)
    assert info.value.__cause__ is None
    return message


def flip(text: str, at: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_round_trip() -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    assert sealed.master_key_id == "new"
    assert PLAIN not in sealed.value
    assert opened((NEW,), sealed) == PLAIN
    assert opened((NEW,), seal((NEW,), 7, "EMPTY", 1, ""), name="EMPTY") == ""


def test_each_seal_has_its_own_data_key_and_nonces() -> None:
    a, b = seal((NEW,), 7, "API_KEY", 1, PLAIN), seal((NEW,), 7, "API_KEY", 1, PLAIN)
    assert a.value != b.value
    assert a.wrapped_key != b.wrapped_key
    # The first 12 bytes are the nonce.
    assert base64.b64decode(a.value)[:12] != base64.b64decode(b.value)[:12]
    assert base64.b64decode(a.wrapped_key)[:12] != base64.b64decode(b.wrapped_key)[:12]
    # b's data key does not open a's value: the keys differ, not only the nonces.
    mixed = Sealed(a.value, b.wrapped_key, "new")
    assert "value fails authentication" in unreadable((NEW,), mixed)


@pytest.mark.parametrize("at", [0, 12, -1])
def test_tampered_value_fails(at: int) -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    bad = dataclasses.replace(sealed, value=flip(sealed.value, at))
    assert "value fails authentication" in unreadable((NEW,), bad)


@pytest.mark.parametrize("at", [0, 12, -1])
def test_tampered_wrapped_key_fails(at: int) -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    bad = dataclasses.replace(sealed, wrapped_key=flip(sealed.wrapped_key, at))
    assert "data key fails authentication" in unreadable((NEW,), bad)


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"short").decode(), "é"])
def test_malformed_columns_fail_cleanly(value: str) -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    unreadable((NEW,), dataclasses.replace(sealed, value=value))
    unreadable((NEW,), dataclasses.replace(sealed, wrapped_key=value))


def test_master_key_id_swapped_fails() -> None:
    sealed = seal((NEW, OLD), 7, "API_KEY", 1, PLAIN)
    message = unreadable((NEW, OLD), dataclasses.replace(sealed, master_key_id="old"))
    assert "'old'" in message


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"user_id": 8}, "another tenant"),
        ({"name": "OTHER_KEY"}, "another name"),
        ({"version": 2}, "a newer version"),
    ],
)
def test_a_copied_row_does_not_decrypt(row: dict[str, object], why: str) -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    assert "fails authentication" in unreadable((NEW,), sealed, **row), why


def test_an_older_version_put_back_does_not_decrypt() -> None:
    v1 = seal((NEW,), 7, "API_KEY", 1, "first")
    seal((NEW,), 7, "API_KEY", 2, "second")
    # Restoring version 1's columns into the row that says version 2:
    unreadable((NEW,), v1, version=2)


def test_first_key_encrypts_every_key_decrypts() -> None:
    under_old = seal((OLD,), 7, "API_KEY", 1, PLAIN)
    under_new = seal((NEW, OLD), 7, "API_KEY", 1, PLAIN)
    assert under_new.master_key_id == "new"
    assert opened((NEW, OLD), under_old) == PLAIN
    assert opened((NEW, OLD), under_new) == PLAIN
    assert opened((OLD, NEW), under_new) == PLAIN


def test_unknown_master_key_id() -> None:
    sealed = seal((OLD,), 7, "API_KEY", 1, PLAIN)
    message = unreadable((NEW,), sealed)
    assert message == (
        "secret 'API_KEY' of tenant 7 (version 1) is wrapped by master key 'old', which "
        "NSL_SECRETS_KEY does not configure"
    )


def test_a_key_with_the_right_id_but_other_bytes_fails() -> None:
    sealed = seal((OLD,), 7, "API_KEY", 1, PLAIN)
    impostor = MasterKey("old", os.urandom(32))
    assert "data key fails authentication under master key 'old'" in unreadable((impostor,), sealed)


def test_rewrap_moves_the_data_key_and_keeps_the_value() -> None:
    sealed = seal((OLD,), 7, "API_KEY", 3, PLAIN)
    moved = rewrap((NEW, OLD), 7, "API_KEY", 3, sealed.wrapped_key, sealed.master_key_id)
    assert moved.master_key_id == "new"
    assert moved.wrapped_key != sealed.wrapped_key
    after = Sealed(sealed.value, moved.wrapped_key, moved.master_key_id)
    # Only the new key is needed now; the value's ciphertext is the same as before.
    assert opened((NEW,), after, version=3) == PLAIN
    unreadable((OLD,), after, version=3)


def test_rewrap_refuses_what_it_cannot_unwrap() -> None:
    sealed = seal((OLD,), 7, "API_KEY", 1, PLAIN)
    with pytest.raises(SecretUnreadable, match="'old'"):
        rewrap((NEW,), 7, "API_KEY", 1, sealed.wrapped_key, "old")
    with pytest.raises(SecretUnreadable, match="fails authentication"):
        rewrap((NEW, OLD), 8, "API_KEY", 1, sealed.wrapped_key, "old")


@pytest.mark.parametrize("name", ["", "a:b", "with space", "x" * 101, "ok\n"])
def test_seal_refuses_names_outside_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="secret name") as info:
        seal((NEW,), 7, name, 1, PLAIN)
    assert PLAIN not in str(info.value)


def test_sealed_and_keys_do_not_show_key_material() -> None:
    sealed = seal((NEW,), 7, "API_KEY", 1, PLAIN)
    assert sealed.wrapped_key not in repr(sealed)
    assert repr(NEW.key) not in repr(NEW)
    assert NEW.key.hex() not in repr(NEW)


def test_settings_never_show_the_master_keys() -> None:
    new, old = new_key(), new_key()
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u@db.example:5432/neosl",
            "REDIS_URL": "redis://cache.example:6379/0",
            "NEO_RPC_URL": "http://neo.example:10332",
            "NSL_SECRET_KEY": new_key(),
            "NSL_SECRETS_KEY": f"new:{new},old:{old}",
        }
    )
    assert [k.id for k in settings.secrets_keys] == ["new", "old"]
    described = settings.describe()
    assert described["secrets_keys"] == "<hidden>"
    for shown in (repr(described), repr(settings)):
        for key in settings.secrets_keys:
            assert repr(key.key) not in shown
            assert key.key.hex() not in shown
        assert new not in shown
        assert old not in shown


def test_seal_refuses_text_that_is_not_unicode() -> None:
    with pytest.raises(ValueError, match="not valid Unicode") as info:
        seal((NEW,), 7, "API_KEY", 1, PLAIN + "\ud800")
    assert PLAIN not in str(info.value)
    assert info.value.__context__ is None
