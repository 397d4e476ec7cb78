"""Tenant secrets over HTTP, and how the executor reads them back (``granted_secrets``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from neosl.config import Settings
from neosl.functions.secretbox import SecretUnreadable, granted_secrets
from neosl.models import Secret
from tests.api.test_accounts import auth, register
from tests.api.test_basics import assert_error
from tests.gas.test_races import racing_app

PLAIN = "sk_live_c0ffee-never-shown ✓"
FIELDS = {"name", "version", "created_at", "updated_at"}


class Tenant:
    def __init__(self, client: FlaskClient, name: str) -> None:
        registered = register(client, name, f"{name}@example.com")
        self.id: int = registered["user"]["id"]
        self.headers = auth(registered["api_key"])


def put(client: FlaskClient, tenant: Tenant, name: str, value: Any = PLAIN) -> TestResponse:
    return client.put(f"/v1/secrets/{name}", json={"value": value}, headers=tenant.headers)


def row(db: Session, tenant: Tenant, name: str) -> Secret:
    db.expire_all()
    return db.scalars(select(Secret).where(Secret.user_id == tenant.id, Secret.name == name)).one()


def test_create_then_new_version(client: FlaskClient, db: Session, settings: Settings) -> None:
    alice = Tenant(client, "alice")
    created = put(client, alice, "API_KEY")
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert set(body) == FIELDS
    assert body["name"] == "API_KEY"
    assert body["version"] == 1
    first = row(db, alice, "API_KEY")
    assert PLAIN not in first.value
    assert first.master_key_id == settings.secrets_keys[0].id
    first_value, first_wrapped = first.value, first.wrapped_key

    again = put(client, alice, "API_KEY", "rotated value")
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["version"] == 2
    assert again.get_json()["created_at"] == body["created_at"]
    second = row(db, alice, "API_KEY")
    assert second.version == 2
    # A new data key, not only a new nonce: the wrapped key changed too.
    assert second.value != first_value
    assert second.wrapped_key != first_wrapped
    keys = settings.secrets_keys
    assert granted_secrets(db, keys, alice.id, ["API_KEY"]) == {"API_KEY": "rotated value"}


def test_the_value_is_never_answered(client: FlaskClient) -> None:
    alice = Tenant(client, "alice")
    answers = [
        put(client, alice, "API_KEY"),
        put(client, alice, "API_KEY"),
        put(client, alice, "OTHER"),
        client.get("/v1/secrets", headers=alice.headers),
        client.get("/v1/secrets/API_KEY", headers=alice.headers),
        client.get("/openapi.json"),
    ]
    for resp in answers:
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
        assert PLAIN not in resp.get_data(as_text=True)
    items = answers[3].get_json()["items"]
    assert [set(i) for i in items] == [FIELDS, FIELDS]
    assert answers[4].get_json()["version"] == 2


def test_delete_then_404(client: FlaskClient) -> None:
    alice = Tenant(client, "alice")
    assert put(client, alice, "API_KEY").status_code == 201
    resp = client.delete("/v1/secrets/API_KEY", headers=alice.headers)
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert_error(client.get("/v1/secrets/API_KEY", headers=alice.headers), 404, "not_found")
    assert_error(client.delete("/v1/secrets/API_KEY", headers=alice.headers), 404, "not_found")
    assert client.get("/v1/secrets", headers=alice.headers).get_json()["items"] == []
    # The name is free again: a new secret starts over at version 1.
    assert put(client, alice, "API_KEY").get_json()["version"] == 1


@pytest.mark.parametrize(
    "name", ["a-b", "with%20space", "caf%C3%A9", "a.b", "x" * 101, "dots..", "semi%3Bcolon"]
)
def test_bad_names_are_422(client: FlaskClient, name: str) -> None:
    alice = Tenant(client, "alice")
    for resp in (
        put(client, alice, name),
        client.get(f"/v1/secrets/{name}", headers=alice.headers),
        client.delete(f"/v1/secrets/{name}", headers=alice.headers),
    ):
        err = assert_error(resp, 422, "validation_error")
        assert set(err["details"]) == {"name"}


def test_name_limits(client: FlaskClient) -> None:
    alice = Tenant(client, "alice")
    for name in ("a", "_", "x" * 100, "Mixed_Case_09"):
        assert put(client, alice, name).status_code == 201, name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": "x" * 4097}, "value"),
        # 2049 characters, 4098 bytes: the limit counts bytes.
        ({"value": "é" * 2049}, "value"),
        ({"value": "\ud800"}, "value"),
        ({"value": 5}, "value"),
        ({"value": None}, "value"),
        ({"value": ["a"]}, "value"),
        ({"value": {"a": "b"}}, "value"),
        ({}, "value"),
        ({"value": "ok", "extra": 1}, "extra"),
        ({"value": "ok", "name": "OTHER"}, "name"),
    ],
)
def test_bad_bodies_are_422(client: FlaskClient, body: Any, field: str) -> None:
    alice = Tenant(client, "alice")
    resp = client.put("/v1/secrets/API_KEY", json=body, headers=alice.headers)
    err = assert_error(resp, 422, "validation_error")
    assert field in err["details"]
    assert_error(client.get("/v1/secrets/API_KEY", headers=alice.headers), 404, "not_found")


def test_value_limits(client: FlaskClient, db: Session, settings: Settings) -> None:
    alice = Tenant(client, "alice")
    values = {"EMPTY": "", "ASCII": "x" * 4096, "WIDE": "é" * 2048, "EMOJI": "🔑" * 1024}
    for name, value in values.items():
        assert put(client, alice, name, value).status_code == 201, name
    assert granted_secrets(db, settings.secrets_keys, alice.id, list(values)) == values


def test_body_must_be_json(client: FlaskClient) -> None:
    alice = Tenant(client, "alice")
    resp = client.put(
        "/v1/secrets/API_KEY",
        data="value=x",
        headers={**alice.headers, "Content-Type": "text/plain"},
    )
    assert_error(resp, 415, "unsupported_media_type")


def test_needs_a_credential(client: FlaskClient) -> None:
    assert_error(client.get("/v1/secrets"), 401, "unauthorized")
    assert_error(client.put("/v1/secrets/X", json={"value": "v"}), 401, "unauthorized")


def test_tenants_are_isolated(client: FlaskClient, db: Session, settings: Settings) -> None:
    alice, bob = Tenant(client, "alice"), Tenant(client, "bob")
    assert put(client, alice, "API_KEY").status_code == 201
    assert client.get("/v1/secrets", headers=bob.headers).get_json()["items"] == []
    assert_error(client.get("/v1/secrets/API_KEY", headers=bob.headers), 404, "not_found")
    assert_error(client.delete("/v1/secrets/API_KEY", headers=bob.headers), 404, "not_found")
    # Bob's secret of the same name is his own; Alice's stays as it was.
    mine = put(client, bob, "API_KEY", "bob's value")
    assert mine.status_code == 201
    assert mine.get_json()["version"] == 1
    assert client.get("/v1/secrets/API_KEY", headers=alice.headers).get_json()["version"] == 1
    keys = settings.secrets_keys
    assert granted_secrets(db, keys, alice.id, ["API_KEY"]) == {"API_KEY": PLAIN}
    assert granted_secrets(db, keys, bob.id, ["API_KEY"]) == {"API_KEY": "bob's value"}


def test_list_paginates_newest_first(client: FlaskClient) -> None:
    alice = Tenant(client, "alice")
    names = [f"S{i}" for i in range(5)]
    for name in names:
        assert put(client, alice, name).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/secrets", query_string=query, headers=alice.headers).get_json()
        assert len(page["items"]) <= 2
        seen += [i["name"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names[::-1]
    assert pages == 3
    for query in ({"limit": 0}, {"limit": 101}, {"cursor": "nope"}, {"limt": 5}):
        resp = client.get("/v1/secrets", query_string=query, headers=alice.headers)
        assert_error(resp, 422, "validation_error")


def test_granted_secrets_returns_only_requested_existing_names(
    client: FlaskClient, db: Session, settings: Settings
) -> None:
    alice, bob = Tenant(client, "alice"), Tenant(client, "bob")
    for name in ("A", "B", "C"):
        assert put(client, alice, name, f"value of {name}").status_code == 201
    assert put(client, bob, "D", "bob's").status_code == 201
    keys = settings.secrets_keys
    got = granted_secrets(db, keys, alice.id, ["A", "C", "D", "MISSING", "not valid!"])
    assert got == {"A": "value of A", "C": "value of C"}
    assert granted_secrets(db, keys, alice.id, []) == {}
    assert granted_secrets(db, keys, bob.id, ["A", "B"]) == {}


def test_a_row_copied_to_another_tenant_or_name_does_not_decrypt(
    client: FlaskClient, db: Session, settings: Settings
) -> None:
    alice, bob = Tenant(client, "alice"), Tenant(client, "bob")
    assert put(client, alice, "API_KEY").status_code == 201
    original = row(db, alice, "API_KEY")
    for owner, name in ((bob.id, "API_KEY"), (alice.id, "COPY")):
        db.add(
            Secret(
                user_id=owner,
                name=name,
                version=original.version,
                value=original.value,
                wrapped_key=original.wrapped_key,
                master_key_id=original.master_key_id,
            )
        )
    db.commit()
    keys = settings.secrets_keys
    with pytest.raises(SecretUnreadable) as to_bob:
        granted_secrets(db, keys, bob.id, ["API_KEY"])
    with pytest.raises(SecretUnreadable) as to_copy:
        granted_secrets(db, keys, alice.id, ["COPY"])
    for exc in (to_bob.value, to_copy.value):
        assert "fails authentication" in str(exc)
        assert PLAIN not in str(exc)
    # An older version put back into the row does not decrypt either.
    old_value, old_wrapped = original.value, original.wrapped_key
    assert put(client, alice, "API_KEY", "v2").status_code == 200
    db.expire_all()
    current = row(db, alice, "API_KEY")
    current.value, current.wrapped_key = old_value, old_wrapped
    db.commit()
    with pytest.raises(SecretUnreadable):
        granted_secrets(db, keys, alice.id, ["API_KEY"])


THREADS = 8


def test_concurrent_puts_of_one_new_name(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    setup = racing_app(settings, committed_db, redis_client).test_client()
    alice = Tenant(setup, "alice")
    barrier = threading.Barrier(THREADS)
    answers: list[TestResponse] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        # Each thread serves from its own app, as separate API processes would.
        client = racing_app(settings, committed_db, redis_client).test_client()
        try:
            barrier.wait(timeout=60)
            resp = put(client, alice, "RACE", f"value {i}")
            with lock:
                answers.append(resp)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert errors == []
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (THREADS - 1) + [201], [a.get_json() for a in answers]
    # Every write was one version, in some order.
    assert sorted(a.get_json()["version"] for a in answers) == list(range(1, THREADS + 1))
    with Session(committed_db) as session:
        rows = session.scalars(select(Secret).where(Secret.user_id == alice.id)).all()
        assert [(r.name, r.version) for r in rows] == [("RACE", THREADS)]
        value = granted_secrets(session, settings.secrets_keys, alice.id, ["RACE"])["RACE"]
    assert value in {f"value {i}" for i in range(THREADS)}
