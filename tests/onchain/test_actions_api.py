"""The tenant's signer and actions over HTTP: created once, checked, idempotent, isolated,
paid for (a balance covering the most the relay holds) and limited in flight per tenant."""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal
from typing import Any

from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import make_celery
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.functions.sandbox.types import Outcome
from neosl.gas import ledger
from neosl.models import Execution, Function, GasAccount, NeoAction
from neosl.neo.addresses import address_to_script_hash
from neosl.onchain import actions
from neosl.pricefeeds import definitions
from neosl_api.app import create_app
from neosl_api.tenancy import TenantLock
from neosl_executor import runner
from tests import factories
from tests.api.test_basics import assert_error
from tests.factories import new_address
from tests.gas.test_api import add_account, fund, queued, tenant
from tests.platform.test_jobs_after_commit import waiting

GAS = "0xd2a4cff31913016155e38e474a2c06d08be276cf"
CALL = {"contract": GAS, "method": "symbol", "args": []}
ADDRESS = new_address()
# What the relay may hold for an action with the test settings: NSL_ACTION_MAX_FEE (10 GAS)
# and no service fee.
MOST_HELD = "10"


def me(client: FlaskClient, h: dict[str, str]) -> int:
    user_id: int = client.get("/v1/me", headers=h).get_json()["id"]
    return user_id


def post(client: FlaskClient, h: dict[str, str], body: Any, key: str = "k1") -> Any:
    return client.post("/v1/neo/actions", json=body, headers={**h, "Idempotency-Key": key})


def paying(client: FlaskClient, db: Session, name: str = "alice", gas: str = MOST_HELD) -> Any:
    """A new tenant's headers, its default account holding ``gas``."""
    h = tenant(client, name)
    fund(db, add_account(client, h)["id"], gas)
    return h


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
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h = paying(client, db)
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
    alice, bob = paying(client, db), paying(client, db, "bob")
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


def test_an_action_needs_a_balance_covering_the_most_the_relay_holds(
    settings: Settings,
    session_factory: sessionmaker[Session],
    db: Session,
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    """A tenant who cannot pay is refused before anything is queued: no row, no job for the
    relay, and the Idempotency-Key stays free for the same request once funded."""
    fees = dataclasses.replace(settings, action_service_fee=Decimal("0.5"))
    client = create_app(
        fees, session_factory=session_factory, redis=redis_client, sandbox=sandbox
    ).test_client()
    h = tenant(client)
    user_id = me(client, h)
    # No gas account at all.
    error = assert_error(post(client, h, CALL), 402, "payment_required")
    assert "NSL_ACTION_MAX_FEE" in error["message"]
    assert "10.5 GAS" in error["message"], error["message"]
    assert "balance" in error["details"]
    # Short of the cap (10) plus the service fee (0.5) by the smallest amount.
    account = add_account(client, h)
    fund(db, account["id"], "10.49999999")
    assert_error(post(client, h, CALL), 402, "payment_required")
    assert db.scalar(select(func.count()).where(NeoAction.user_id == user_id)) == 0
    assert queued(redis_client, jobs.GASBANK_QUEUE) == []
    # Enough now: the same key queues it (the refusals stored no answer under it).
    fund(db, account["id"], "0.00000001")
    created = post(client, h, CALL)
    assert created.status_code == 202, created.get_json()
    assert created.get_json()["status"] == "queued"
    assert len(queued(redis_client, jobs.GASBANK_QUEUE)) == 1
    # Nothing was charged: the relay holds the fees when it signs.
    assert db.get_one(GasAccount, account["id"]).balance == Decimal("10.5")
    assert ledger.verify(db) == []


def test_actions_in_flight_are_limited_per_tenant_under_concurrent_requests(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    """Sixteen requests at once, five allowed in flight: five queued, eleven 409 naming
    the setting, whatever the interleaving. A settled action makes room again; another
    tenant is not affected."""
    limited = dataclasses.replace(settings, actions_in_flight_per_tenant=5)
    app = create_app(limited, session_factory=sessions, redis=redis_client, sandbox=sandbox)
    with sessions() as db:
        h = paying(app.test_client(), db)
    statuses: list[int] = []
    errors: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def request(i: int) -> None:
        client = app.test_client()
        start.wait()
        resp = post(client, h, {**CALL, "args": [i]}, key=f"c{i}")
        with lock:
            statuses.append(resp.status_code)
            if resp.status_code != 202:
                errors.append(assert_error(resp, 409, "conflict"))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [202] * 5 + [409] * 11
    assert all("NSL_ACTIONS_IN_FLIGHT_PER_TENANT" in e["message"] for e in errors), errors
    client = app.test_client()
    user_id = me(client, h)
    with sessions() as db:
        assert actions.in_flight(db, user_id) == 5
        assert db.scalar(select(func.count()).where(NeoAction.user_id == user_id)) == 5
    assert len(queued(redis_client, jobs.GASBANK_QUEUE)) == 5
    assert_error(post(client, h, {**CALL, "args": [99]}, key="more"), 409, "conflict")
    # Another tenant has its own allowance.
    with sessions() as db:
        bob = paying(client, db, "bob")
    assert post(client, bob, CALL, key="b").status_code == 202
    # One settles: room for one more.
    with sessions() as db:
        first = db.scalars(
            select(NeoAction.id).where(NeoAction.user_id == user_id).order_by(NeoAction.id)
        ).first()
        db.execute(update(NeoAction).where(NeoAction.id == first).values(status="confirmed"))
        db.commit()
    assert post(client, h, {**CALL, "args": [99]}, key="more2").status_code == 202
    assert_error(post(client, h, {**CALL, "args": [100]}, key="more3"), 409, "conflict")
    with sessions() as db:
        assert ledger.verify(db) == []


def test_an_execution_past_the_limit_records_its_actions_failed(
    settings: Settings, db: Session, redis_client: Redis
) -> None:
    """neo.invoke actions of an execution count too: past the limit of the executor's
    settings they are stored failed with the reason, never sent, and the execution still
    succeeds (its unit of work does not fail)."""
    limited = dataclasses.replace(settings, actions_in_flight_per_tenant=3)
    producer: Celery = make_celery(limited, "test-executor")
    try:
        user = factories.make_user(db)
        fn = factories.make_function(db, user)
        dispatcher = Dispatcher(producer)
        # Two in flight already, from the API.
        for i in range(2):
            actions.queue(db, dispatcher, user.id, actions.check(GAS, "symbol", [i]), limit=3)
        execution = Execution(
            function_id=fn.id, user_id=user.id, version=1, timeout=30, status="running"
        )
        db.add(execution)
        db.commit()
        calls = [actions.check(GAS, "transfer", [i]) for i in range(3)]
        outcome = Outcome("succeeded", result=1, duration_ms=5)
        assert runner.finish(db, limited, execution.id, outcome, calls=calls, dispatcher=dispatcher)
    finally:
        producer.close()
    db.expire_all()
    assert db.get_one(Execution, execution.id).status == "succeeded"
    mine = db.scalars(
        select(NeoAction).where(NeoAction.execution_id == execution.id).order_by(NeoAction.position)
    ).all()
    assert [a.status for a in mine] == ["queued", "failed", "failed"]
    for refused in mine[1:]:
        assert "NSL_ACTIONS_IN_FLIGHT_PER_TENANT" in (refused.failure_reason or "")
        assert refused.settled_at is not None
    sent = sorted(kwargs["action_id"] for _, kwargs in waiting(redis_client, jobs.GASBANK_QUEUE))
    in_flight = db.scalars(
        select(NeoAction.id).where(NeoAction.user_id == user.id, NeoAction.status == "queued")
    ).all()
    assert sent == sorted(in_flight)
    assert len(sent) == 3


def test_the_tenant_locks_of_shared_code_are_the_apis() -> None:
    """The limits are counted under locks that shared code takes (the executor and the CLI
    create rows too): their classes are the API's, and no two classes are the same."""
    assert TenantLock.ACTIONS_IN_FLIGHT == actions.IN_FLIGHT_LOCK
    assert TenantLock.PRICE_FEEDS == definitions.FEEDS_LOCK
    assert len({int(lock) for lock in TenantLock}) == len(TenantLock.__members__)
