"""The tenant's signer and actions over HTTP: created once, checked, idempotent, isolated."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.functions.sandbox import SandboxPool
from neosl.models import Execution, Function, NeoAction
from neosl.neo.addresses import address_to_script_hash
from neosl_api.app import create_app
from tests.api.test_basics import assert_error
from tests.factories import new_address
from tests.gas.test_api import queued, tenant

GAS = "0xd2a4cff31913016155e38e474a2c06d08be276cf"
CALL = {"contract": GAS, "method": "symbol", "args": []}
ADDRESS = new_address()


def me(client: FlaskClient, h: dict[str, str]) -> int:
    user_id: int = client.get("/v1/me", headers=h).get_json()["id"]
    return user_id


def post(client: FlaskClient, h: dict[str, str], body: Any, key: str = "k1") -> Any:
    return client.post("/v1/neo/actions", json=body, headers={**h, "Idempotency-Key": key})


def test_the_signer_is_created_once_and_is_a_valid_account(client: FlaskClient) -> None:
    h = tenant(client)
    first = client.get("/v1/neo/signer", headers=h)
    assert first.status_code == 200, first.get_json()
    signer = first.get_json()
    assert set(signer) == {"address", "script_hash", "public_key", "created_at"}
    assert signer["script_hash"] == f"0x{address_to_script_hash(signer['address'])}"
    assert client.get("/v1/neo/signer", headers=h).get_json() == signer
    other = client.get("/v1/neo/signer", headers=tenant(client, "bob")).get_json()
    assert other["address"] != signer["address"]
    # Nothing of the key is ever answered.
    assert "sealed" not in first.get_data(as_text=True)


def test_without_the_relay_key_signers_are_unavailable(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    bare = dataclasses.replace(settings, relay_key=None, relay_public_key=None)
    app: Flask = create_app(
        bare, session_factory=session_factory, redis=redis_client, sandbox=sandbox
    )
    client = app.test_client()
    h = tenant(client)
    assert_error(client.get("/v1/neo/signer", headers=h), 503, "signers_unavailable")


def test_an_action_is_queued_once_per_key_and_sent_to_the_relay(
    client: FlaskClient, redis_client: Redis
) -> None:
    h = tenant(client)
    body = {
        "contract": GAS.upper().replace("0X", "0x"),
        "method": "transfer",
        "args": [
            {"$neo": "Hash160", "value": ADDRESS},
            {"$neo": "Integer", "value": str(2**100)},
            7,
            "memo",
            None,
        ],
    }
    first = post(client, h, body)
    assert first.status_code == 202, first.get_json()
    action = first.get_json()
    assert (action["contract"], action["method"], action["status"]) == (GAS, "transfer", "queued")
    assert action["args"][1] == {"$neo": "Integer", "value": str(2**100)}
    assert action["args"][2:] == [7, "memo", None]
    again = post(client, h, body)
    assert again.status_code == 202
    assert again.get_json() == action
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_error(post(client, h, CALL), 409, "conflict")
    sent = [m for m in queued(redis_client, jobs.GASBANK_QUEUE)]
    assert len(sent) == 1


def test_bad_actions_are_422_naming_the_field(client: FlaskClient) -> None:
    h = tenant(client)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**CALL, "contract": "0x12"}, "contract"),
        ({**CALL, "contract": ADDRESS}, "contract"),
        ({**CALL, "method": "bad name"}, "method"),
        ({**CALL, "method": ""}, "method"),
        ({**CALL, "args": [1.5]}, "args"),
        ({**CALL, "args": [{"$neo": "Hash160", "value": "nope"}]}, "args"),
        ({**CALL, "args": [{"x": 1}]}, "args"),
        ({**CALL, "args": "not a list"}, "args"),
        ({"method": "symbol"}, "contract"),
        ({**CALL, "extra": 1}, "extra"),
    ]
    for i, (body, field) in enumerate(cases):
        error = assert_error(post(client, h, body, key=f"bad{i}"), 422, "validation_error")
        assert field in (error["details"] or {}), (body, error)
    assert_error(
        client.post("/v1/neo/actions", json=CALL, headers=h), 400, "idempotency_key_required"
    )


def test_actions_are_listed_filtered_and_isolated(client: FlaskClient, db: Session) -> None:
    alice, bob = tenant(client), tenant(client, "bob")
    ids = [
        post(client, alice, {**CALL, "args": [i]}, key=f"a{i}").get_json()["id"] for i in range(3)
    ]
    bobs = post(client, bob, CALL, key="b").get_json()["id"]
    db.get_one(NeoAction, ids[0]).status = "failed"
    db.commit()
    page = client.get("/v1/neo/actions?limit=2", headers=alice).get_json()
    assert [a["id"] for a in page["items"]] == ids[::-1][:2]
    rest = client.get(f"/v1/neo/actions?limit=2&cursor={page['next_cursor']}", headers=alice)
    assert [a["id"] for a in rest.get_json()["items"]] == [ids[0]]
    failed = client.get("/v1/neo/actions?status=failed", headers=alice).get_json()["items"]
    assert [a["id"] for a in failed] == [ids[0]]
    assert_error(client.get("/v1/neo/actions?status=nope", headers=alice), 422, "validation_error")
    assert client.get(f"/v1/neo/actions/{ids[1]}", headers=alice).status_code == 200
    assert_error(client.get(f"/v1/neo/actions/{bobs}", headers=alice), 404, "not_found")
    assert_error(client.get(f"/v1/neo/actions/{ids[1]}", headers=bob), 404, "not_found")
    assert [a["id"] for a in client.get("/v1/neo/actions", headers=bob).get_json()["items"]] == [
        bobs
    ]


def test_an_execution_lists_its_actions_in_order(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    user_id = me(client, h)
    fn = Function(user_id=user_id, name="f", source_code="function main() {}")
    db.add(fn)
    db.flush()
    execution = Execution(
        function_id=fn.id, user_id=user_id, version=1, timeout=30, status="succeeded"
    )
    db.add(execution)
    db.flush()
    for position in (1, 0):
        db.add(
            NeoAction(
                user_id=user_id,
                execution_id=execution.id,
                position=position,
                contract=GAS,
                method=f"m{position}",
                args=[],
            )
        )
    db.commit()
    body = client.get(f"/v1/executions/{execution.id}", headers=h).get_json()
    assert [a["method"] for a in body["actions"]] == ["m0", "m1"]
    listed = client.get("/v1/executions", headers=h).get_json()["items"]
    assert "actions" not in listed[0]
    filtered = client.get(f"/v1/neo/actions?execution_id={execution.id}", headers=h).get_json()
    assert sorted(a["method"] for a in filtered["items"]) == ["m0", "m1"]
