"""Functions over HTTP: save (compiled first), version, pause, invoke, read executions."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.executions import announce_after_commit
from neosl.functions.sandbox import SandboxPool
from neosl.gas import ledger
from neosl.gas.prices import execution_hold
from neosl.models import Execution, ExecutionLog, FunctionVersion, GasAccount, Transaction
from neosl_api.app import create_app
from neosl_api.services import functions
from tests.api.test_basics import assert_error
from tests.gas.test_api import fund, queued, tenant
from tests.proofs import register_key
from tests.scraping import api_figures
from tests.waiting import wait_until

SOURCE = "function main(input, ctx) { return {echo: input, version: ctx.version}; }"


def create(client: FlaskClient, h: dict[str, str], **fields: Any) -> Any:
    body = {"name": "echo", "source_code": SOURCE, **fields}
    return client.post("/v1/functions", json=body, headers=h)


def created(client: FlaskClient, h: dict[str, str], **fields: Any) -> dict[str, Any]:
    resp = create(client, h, **fields)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_create_with_defaults_and_read_back(client: FlaskClient) -> None:
    h = tenant(client)
    fn = created(client, h, description="echoes", secrets=["API_KEY", "API_KEY", "OTHER"])
    assert (fn["version"], fn["status"], fn["timeout"], fn["memory"]) == (1, "active", 30, 128)
    assert fn["secrets"] == ["API_KEY", "OTHER"]
    assert fn["execution_count"] == 0
    assert fn["last_execution"] is None
    again = client.get(f"/v1/functions/{fn['id']}", headers=h).get_json()
    assert again == fn
    versions = client.get(f"/v1/functions/{fn['id']}/versions", headers=h).get_json()
    assert [v["version"] for v in versions["items"]] == [1]
    assert versions["items"][0]["source_code"] == SOURCE


def test_a_syntax_error_is_422_with_line_and_column(client: FlaskClient) -> None:
    h = tenant(client)
    resp = create(client, h, source_code="function main() {\n  return 1 +;\n}")
    err = assert_error(resp, 422, "validation_error")
    assert "does not compile" in err["message"]
    assert err["details"]["line"] == ["2"]
    assert err["details"]["column"]
    assert client.get("/v1/functions", headers=h).get_json()["items"] == []


def test_compiling_does_not_run_the_code(client: FlaskClient) -> None:
    """A top-level infinite loop compiles at once: saving never executes tenant code."""
    h = tenant(client)
    fn = created(client, h, source_code="while (true) {}\nfunction main() { return 1 }")
    assert fn["version"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": 301}, "timeout"),
        ({"memory": 15}, "memory"),
        ({"memory": 513}, "memory"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"source_code": ""}, "source_code"),
        ({"source_code": "//" + "x" * (256 * 1024)}, "source_code"),
        ({"secrets": ["not-a-name"]}, "secrets"),
        ({"secrets": "API_KEY"}, "secrets"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: FlaskClient, fields: dict[str, Any], field: str
) -> None:
    err = assert_error(create(client, tenant(client), **fields), 422, "validation_error")
    assert field in json.dumps(err["details"])


def test_names_are_unique_per_tenant(client: FlaskClient) -> None:
    alice, bob = tenant(client, "alice"), tenant(client, "bob")
    created(client, alice)
    assert_error(create(client, alice), 409, "conflict")
    created(client, bob)  # another tenant may use the name


def test_tenants_do_not_see_each_others_functions(client: FlaskClient) -> None:
    alice, bob = tenant(client, "alice"), tenant(client, "bob")
    fn = created(client, alice)
    for path in ("", "/versions", "/versions/1"):
        assert_error(client.get(f"/v1/functions/{fn['id']}{path}", headers=bob), 404, "not_found")
    assert_error(
        client.patch(f"/v1/functions/{fn['id']}", json={"name": "x"}, headers=bob),
        404,
        "not_found",
    )
    assert_error(client.delete(f"/v1/functions/{fn['id']}", headers=bob), 404, "not_found")
    assert_error(
        client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=bob), 404, "not_found"
    )
    assert client.get("/v1/functions", headers=bob).get_json()["items"] == []


def test_code_limits_and_grants_make_versions_name_and_status_do_not(
    client: FlaskClient,
) -> None:
    h = tenant(client)
    fn = created(client, h)
    path = f"/v1/functions/{fn['id']}"

    def patch(**changes: Any) -> dict[str, Any]:
        resp = client.patch(path, json=changes, headers=h)
        assert resp.status_code == 200, resp.get_json()
        body: dict[str, Any] = resp.get_json()
        return body

    assert patch(name="renamed", description="d")["version"] == 1
    assert patch(source_code=SOURCE)["version"] == 1  # the same code is no change
    v2 = patch(source_code="function main() { return 2 }")
    assert v2["version"] == 2
    assert patch(timeout=5)["version"] == 3
    assert patch(memory=64)["version"] == 4
    v5 = patch(secrets=["TOKEN"])
    assert (v5["version"], v5["secrets"]) == (5, ["TOKEN"])
    assert patch(status="paused")["version"] == 5
    versions = client.get(f"{path}/versions?limit=2", headers=h).get_json()
    assert [v["version"] for v in versions["items"]] == [5, 4]
    assert versions["next_cursor"]
    first = client.get(f"{path}/versions/1", headers=h).get_json()
    assert (first["source_code"], first["timeout"], first["secrets"]) == (SOURCE, 30, [])
    third = client.get(f"{path}/versions/3", headers=h).get_json()
    assert (third["timeout"], third["memory"]) == (5, 128)
    assert_error(client.get(f"{path}/versions/6", headers=h), 404, "not_found")
    bad = client.patch(path, json={"source_code": "function ("}, headers=h)
    assert_error(bad, 422, "validation_error")
    assert client.get(path, headers=h).get_json()["version"] == 5


def test_rename_onto_another_function_is_409(client: FlaskClient) -> None:
    h = tenant(client)
    created(client, h, name="one")
    two = created(client, h, name="two")
    assert_error(
        client.patch(f"/v1/functions/{two['id']}", json={"name": "one"}, headers=h),
        409,
        "conflict",
    )


def test_invoke_queues_an_execution_after_commit(
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h = tenant(client)
    fn = created(client, h)
    resp = client.post(f"/v1/functions/{fn['id']}/invoke", json={"input": {"a": 1}}, headers=h)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "queued"
    execution = db.get_one(Execution, body["execution_id"])
    assert (execution.status, execution.version, execution.input) == ("queued", 1, {"a": 1})
    assert execution.start_time is None
    messages = queued(redis_client, jobs.EXECUTOR_QUEUE)
    assert [m["headers"]["task"] for m in messages] == [jobs.RUN_EXECUTION.name]
    shown = client.get(f"/v1/executions/{body['execution_id']}", headers=h).get_json()
    assert (shown["status"], shown["function_id"], shown["input"]) == ("queued", fn["id"], {"a": 1})


def test_invoke_a_paused_function_is_409(client: FlaskClient, redis_client: Redis) -> None:
    h = tenant(client)
    fn = created(client, h)
    client.patch(f"/v1/functions/{fn['id']}", json={"status": "paused"}, headers=h)
    resp = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h)
    assert_error(resp, 409, "conflict")
    assert queued(redis_client, jobs.EXECUTOR_QUEUE) == []


def test_input_over_256_kb_is_422(client: FlaskClient) -> None:
    h = tenant(client)
    fn = created(client, h)
    big = {"input": "x" * (256 * 1024)}
    resp = client.post(f"/v1/functions/{fn['id']}/invoke", json=big, headers=h)
    err = assert_error(resp, 422, "validation_error")
    assert "input" in err["details"]


@pytest.fixture
def priced(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> Flask:
    costly = dataclasses.replace(
        settings,
        function_base_fee=Decimal("0.001"),
        function_fee_per_100ms=Decimal("0.0001"),
    )
    return create_app(costly, session_factory=session_factory, redis=redis_client, sandbox=sandbox)


def test_a_tenant_who_cannot_cover_the_hold_gets_402_and_nothing_is_queued(
    priced: Flask, db: Session, redis_client: Redis
) -> None:
    client = priced.test_client()
    h = tenant(client)
    fn = created(client, h)
    resp = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h)
    # The hold: the base fee + 300 started 100 ms at the function's 30 s timeout.
    err = assert_error(resp, 402, "payment_required")
    assert "0.031 GAS" in err["message"]
    assert db.scalar(select(func.count()).select_from(Execution)) == 0
    assert queued(redis_client, jobs.EXECUTOR_QUEUE) == []
    account = register_key(client, h).get_json()
    # The cheapest run is no longer enough: the whole hold must be covered.
    fund(db, account["id"], "0.0309")
    assert client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).status_code == 402
    fund(db, account["id"], "0.0001")
    accepted = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h)
    assert accepted.status_code == 202
    execution = db.get_one(Execution, accepted.get_json()["execution_id"])
    hold = db.get_one(Transaction, execution.hold_transaction_id)
    assert (hold.type, hold.status, hold.amount) == ("function", "pending", Decimal("0.031"))
    assert hold.reference == f"execution:{execution.id}"
    assert db.get_one(GasAccount, account["id"]).balance == 0
    # Nothing left to hold for a second run.
    assert client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).status_code == 402


@pytest.mark.parametrize("timeout", [1, 7, 60])
def test_invoking_holds_the_price_of_a_run_until_the_timeout(
    priced: Flask, db: Session, timeout: int
) -> None:
    client = priced.test_client()
    h = tenant(client)
    fn = created(client, h, timeout=timeout)
    account = register_key(client, h).get_json()
    fund(db, account["id"], "1")
    accepted = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h)
    assert accepted.status_code == 202
    execution = db.get_one(Execution, accepted.get_json()["execution_id"])
    hold = db.get_one(Transaction, execution.hold_transaction_id)
    settings: Settings = priced.extensions["neosl"].settings
    assert hold.amount == execution_hold(settings, timeout)
    assert hold.user_id == execution.user_id
    assert db.get_one(GasAccount, account["id"]).balance == Decimal(1) - hold.amount
    assert ledger.verify(db) == []


def test_deleting_a_function_releases_what_its_queued_executions_hold(
    priced: Flask, db: Session
) -> None:
    client = priced.test_client()
    h = tenant(client)
    fn = created(client, h)
    account = register_key(client, h).get_json()
    fund(db, account["id"], "0.1")
    execution_id = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).get_json()[
        "execution_id"
    ]
    hold_id = db.get_one(Execution, execution_id).hold_transaction_id
    assert db.get_one(GasAccount, account["id"]).balance == Decimal("0.069")
    assert client.delete(f"/v1/functions/{fn['id']}", headers=h).status_code == 204
    db.expire_all()
    assert db.get_one(Transaction, hold_id).status == "failed"
    assert db.get_one(GasAccount, account["id"]).balance == Decimal("0.1")
    assert ledger.verify(db) == []


def test_deleting_a_function_removes_it_with_its_versions_and_executions(
    client: FlaskClient, db: Session
) -> None:
    h = tenant(client)
    fn = created(client, h)
    execution_id = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).get_json()[
        "execution_id"
    ]
    assert client.delete(f"/v1/functions/{fn['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/functions/{fn['id']}", headers=h), 404, "not_found")
    assert_error(client.get(f"/v1/executions/{execution_id}", headers=h), 404, "not_found")
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(FunctionVersion)) == 0


def test_executions_filters_logs_and_isolation(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    one = created(client, h, name="one")
    two = created(client, h, name="two")
    ids = [
        client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).get_json()[
            "execution_id"
        ]
        for fn in (one, two, two)
    ]
    db.get_one(Execution, ids[0]).status = "succeeded"
    for i in range(3):
        db.add(ExecutionLog(execution_id=ids[0], level="info", message=f"line {i}"))
    db.commit()
    every = client.get("/v1/executions", headers=h).get_json()["items"]
    assert [e["id"] for e in every] == ids[::-1]
    of_two = client.get(f"/v1/executions?function_id={two['id']}", headers=h).get_json()
    assert [e["id"] for e in of_two["items"]] == ids[:0:-1]
    done = client.get("/v1/executions?status=succeeded", headers=h).get_json()["items"]
    assert [e["id"] for e in done] == [ids[0]]
    logs = client.get(f"/v1/executions/{ids[0]}/logs?limit=2", headers=h).get_json()
    assert [line["message"] for line in logs["items"]] == ["line 2", "line 1"]
    assert logs["next_cursor"]
    assert_error(client.get("/v1/executions?status=odd", headers=h), 422, "validation_error")
    bob = tenant(client, "bob")
    assert client.get("/v1/executions", headers=bob).get_json()["items"] == []
    assert_error(client.get(f"/v1/executions/{ids[0]}", headers=bob), 404, "not_found")
    assert_error(client.get(f"/v1/executions/{ids[0]}/logs", headers=bob), 404, "not_found")


def test_metrics_show_executions_durations_and_sandbox_pools(
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h = tenant(client)
    fn = created(client, h)
    ids = [
        client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).get_json()[
            "execution_id"
        ]
        for _ in range(3)
    ]
    for execution_id, status, duration in zip(
        ids, ("succeeded", "timeout", "queued"), (40, 2000, None), strict=True
    ):
        row = db.get_one(Execution, execution_id)
        row.status, row.duration = status, duration
    db.commit()
    redis_client.hset("nsl:executor:pool:host:1", mapping={"size": 3, "restarts": 2})
    text = api_figures(client.application)
    assert 'neosl_executions{status="succeeded"} 1.0' in text
    assert 'neosl_executions{status="timeout"} 1.0' in text
    assert 'neosl_executions{status="queued"} 1.0' in text
    assert 'neosl_execution_duration_milliseconds_bucket{le="50"} 1.0' in text
    assert 'neosl_execution_duration_milliseconds_bucket{le="+Inf"} 2.0' in text
    assert "neosl_execution_duration_milliseconds_sum 2040.0" in text
    assert 'neosl_sandbox_processes{worker="host:1"} 3.0' in text
    assert 'neosl_sandbox_restarts{worker="host:1"} 2.0' in text


def test_wait_outlasts_the_redis_socket_timeout(
    client: FlaskClient,
    db: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    producer: Celery,
) -> None:
    """A ?wait longer than the API's Redis socket timeout still sees the announcement."""
    h = tenant(client)
    fn = created(client, h)
    execution_id = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).get_json()[
        "execution_id"
    ]
    short = Redis.from_url(settings.redis_url, socket_timeout=0.3)
    user_id = db.get_one(Execution, execution_id).user_id

    def finish_later() -> None:
        time.sleep(0.8)  # the "executor": finishes after several socket timeouts
        # A session of its own, as the executor has: the waiter reads with ``db`` as soon as
        # the announcement lands, while this commit may still be returning.
        with session_factory() as executor:
            executor.execute(
                update(Execution).where(Execution.id == execution_id).values(status="succeeded")
            )
            announce_after_commit(executor, Dispatcher(producer), execution_id)
            executor.commit()

    worker = threading.Thread(target=finish_later)
    worker.start()
    try:
        found = functions.wait_for(db, short, user_id, execution_id, 5, limit=4)
    finally:
        worker.join(10)
        short.close()
    assert found is not None
    assert found.status == "succeeded"


@pytest.mark.slow
def test_a_tenant_waits_on_at_most_its_share_of_requests(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    """With one waiting request allowed per tenant, a tenant's second ?wait answers 202 at
    once while its first still waits; another tenant still waits. (No executor runs here:
    every wait runs to its end.)"""
    app = create_app(
        dataclasses.replace(settings, waiting_per_tenant=1),
        session_factory=session_factory,
        redis=redis_client,
        sandbox=sandbox,
    )
    client = app.test_client()
    greedy, other = tenant(client, "greedy"), tenant(client, "other")
    greedy_fn, other_fn = created(client, greedy), created(client, other)
    user_id = client.get("/v1/me", headers=greedy).get_json()["id"]
    answers: list[int] = []
    first = threading.Thread(
        target=lambda: answers.append(
            client.post(
                f"/v1/functions/{greedy_fn['id']}/invoke?wait=3", json={}, headers=greedy
            ).status_code
        )
    )
    first.start()
    try:
        wait_until(
            lambda: redis_client.zcard(f"nsl:waiting:{user_id}") == 1, "the first request to wait"
        )
        started = time.monotonic()
        second = client.post(
            f"/v1/functions/{greedy_fn['id']}/invoke?wait=3", json={}, headers=greedy
        )
        assert second.status_code == 202
        assert time.monotonic() - started < 1.5  # not made to wait its 3 s
        started = time.monotonic()
        elsewhere = client.post(
            f"/v1/functions/{other_fn['id']}/invoke?wait=1", json={}, headers=other
        )
        assert elsewhere.status_code == 202
        assert time.monotonic() - started >= 1.0  # it did wait: its share is its own
    finally:
        first.join(10)
    assert answers == [202]
    # The first waiter left: the greedy tenant may wait again.
    assert redis_client.zcard(f"nsl:waiting:{user_id}") == 0
