"""Triggers over HTTP: validation per type, CRUD, pause/resume, firing by hand, webhook
deliveries (signed, fresh, once, small, rate-limited) and isolation between tenants."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import MasterKey, Settings
from neosl.functions import secretbox
from neosl.functions.sandbox import SandboxPool
from neosl.models import Execution, PriceFeed, Trigger, TriggerEvent
from neosl_api.app import create_app
from neosl_api.services.triggers import sign
from tests.api.test_basics import assert_error
from tests.functions.test_api import created
from tests.gas.test_api import tenant
from tests.gas.test_races import THREADS, Call, bodies, race, statuses

CRON = {"schedule": "0 */6 * * *", "timezone": "UTC"}


def make(client: FlaskClient, h: dict[str, str], fn: int, kind: str, config: Any, **kw: Any) -> Any:
    body = {"name": kw.pop("name", f"{kind}-t"), "function_id": fn, "trigger_type": kind}
    if config is not None:
        body["trigger_config"] = config
    return client.post("/v1/triggers", json={**body, **kw}, headers=h)


def made(client: FlaskClient, h: dict[str, str], fn: int, kind: str, config: Any, **kw: Any) -> Any:
    resp = make(client, h, fn, kind, config, **kw)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def app_with(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
    **changes: Any,
) -> FlaskClient:
    """A client of an API whose settings differ from the run's by ``changes``."""
    app = create_app(
        dataclasses.replace(settings, **changes),
        session_factory=session_factory,
        redis=redis_client,
        sandbox=sandbox,
    )
    return app.test_client()


def setup(client: FlaskClient, name: str = "alice") -> tuple[dict[str, str], int]:
    h = tenant(client, name)
    return h, created(client, h)["id"]


# -- validation -----------------------------------------------------------------------------


def test_cron_trigger_is_created_with_its_next_slot(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "cron", {"schedule": "0  */6 * * *"}, description="every 6 h")
    assert t["trigger_config"] == {"schedule": "0 */6 * * *", "timezone": "UTC"}
    assert (t["status"], t["trigger_type"], t["description"]) == ("active", "cron", "every 6 h")
    slot = dt.datetime.fromisoformat(t["next_fire_at"])
    assert slot > dt.datetime.now(dt.UTC)
    assert slot.minute == 0
    assert slot.hour % 6 == 0
    assert t["webhook_url"] is None
    assert t["webhook_secret"] is None


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("cron", {}, "trigger_config.schedule"),
        ("cron", {"schedule": "61 * * * *"}, "trigger_config.schedule"),
        ("cron", {"schedule": "* * *"}, "trigger_config.schedule"),
        ("cron", {"schedule": "0 * * * *", "timezone": "Mars/Olympus"}, "trigger_config.timezone"),
        ("cron", {"schedule": "* * * * * *"}, "trigger_config.schedule"),  # every second
        ("cron", {"schedule": "0 * * * *", "extra": 1}, "trigger_config.extra"),
        ("price", {"asset_pair": "NEOUSD"}, "trigger_config.asset_pair"),
        ("price", {"asset_pair": "NEO/USD", "condition": "equal"}, "trigger_config.condition"),
        (
            "price",
            {"asset_pair": "NEO/USD", "condition": "above", "threshold": -1},
            "trigger_config.threshold",
        ),
        (
            "price",
            {"asset_pair": "NEO/USD", "condition": "above", "threshold": "NaN"},
            "trigger_config.threshold",
        ),
        (
            "price",
            {"asset_pair": "NEO/USD", "condition": "above", "threshold": 5, "duration": 1.5},
            "trigger_config.duration",
        ),
        ("blockchain", {"event_name": "Transfer"}, "trigger_config.contract_hash"),
        ("blockchain", {"contract_hash": "0x" + "a" * 40}, "trigger_config.event_name"),
        (
            "blockchain",
            {"contract_hash": "0x" + "a" * 40, "event_name": "T", "filters": [{"index": 0}]},
            "trigger_config.filters[0]",
        ),
        (
            "blockchain",
            {
                "contract_hash": "0x" + "a" * 40,
                "event_name": "T",
                "filters": [{"index": 0, "equals": 1.5}],
            },
            "trigger_config.filters[0].equals",
        ),
        ("webhook", {"secret": "mine"}, "trigger_config.secret"),
    ],
)
def test_config_errors_name_the_field(
    client: FlaskClient, kind: str, config: Any, field: str
) -> None:
    h, fn = setup(client)
    error = assert_error(make(client, h, fn, kind, config), 422, "validation_error")
    assert field in error["details"], error


def test_config_must_be_an_object_and_the_type_known(client: FlaskClient) -> None:
    h, fn = setup(client)
    assert_error(make(client, h, fn, "cron", ["0 * * * *"]), 422, "validation_error")
    error = assert_error(make(client, h, fn, "sundial", {}), 422, "validation_error")
    assert "trigger_type" in json.dumps(error["details"])


def test_the_minimum_cron_interval_is_configurable(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    client = app_with(settings, session_factory, redis_client, sandbox, cron_min_interval=1)
    h, fn = setup(client)
    t = made(client, h, fn, "cron", {"schedule": "*/2 * * * * *", "timezone": "Europe/Berlin"})
    assert t["trigger_config"]["timezone"] == "Europe/Berlin"


def test_names_are_unique_per_tenant_and_the_function_must_be_yours(client: FlaskClient) -> None:
    h, fn = setup(client)
    made(client, h, fn, "cron", CRON, name="six")
    assert_error(make(client, h, fn, "cron", CRON, name="six"), 409, "conflict")
    hb, fb = setup(client, "bob")
    made(client, hb, fb, "cron", CRON, name="six")  # another tenant may use the name
    assert_error(make(client, hb, fn, "cron", CRON, name="other"), 404, "not_found")


def test_blockchain_config_is_normalised(client: FlaskClient) -> None:
    h, fn = setup(client)
    config = {
        "contract_hash": "0x" + "AB" * 20,
        "event_name": "Transfer",
        "filters": [{"index": 1, "equals": "NZNovyZ6xrCBfMzuUbVpRrdP7qEN7LfLdS"}],
    }
    t = made(client, h, fn, "blockchain", config)
    assert t["trigger_config"]["contract_hash"] == "0x" + "ab" * 20
    assert t["trigger_config"]["filters"] == config["filters"]


# -- price feeds ----------------------------------------------------------------------------


def feed(db: Session, user_id: int, pair: str, public: bool = False) -> int:
    row = PriceFeed(user_id=user_id, asset_pair=pair, frequency=60, sources=[], public=public)
    db.add(row)
    db.commit()
    return row.id


def me(client: FlaskClient, h: dict[str, str]) -> int:
    user_id: int = client.get("/v1/me", headers=h).get_json()["id"]
    return user_id


PRICE = {"asset_pair": "neo/usd", "condition": "above", "threshold": 50.5, "duration": 300}


def test_price_pairs_resolve_to_own_feed_else_public(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    error = assert_error(make(client, h, fn, "price", PRICE), 422, "validation_error")
    assert "trigger_config.asset_pair" in error["details"]
    hb, _fb = setup(client, "bob")
    operator = me(client, hb)
    public = feed(db, operator, "NEO/USD", public=True)
    private = feed(db, operator, "NEO/USD")
    t = made(client, h, fn, "price", PRICE)
    assert t["feed_id"] == public
    assert t["trigger_config"] == {
        "asset_pair": "NEO/USD",
        "condition": "above",
        "threshold": "50.5",
        "duration": 300,
    }
    assert t["price_state"] == {"armed": True, "since": None}
    own = feed(db, me(client, h), "NEO/USD")
    assert made(client, h, fn, "price", PRICE, name="p2")["feed_id"] == own
    # Another tenant's private feed cannot be named; a public one of another pair neither.
    for feed_id in (private, feed(db, operator, "GAS/USD", public=True)):
        error = assert_error(
            make(client, h, fn, "price", {**PRICE, "feed_id": feed_id}, name="p3"),
            422,
            "validation_error",
        )
        assert "trigger_config.feed_id" in error["details"]


# -- reading, changing, isolation -----------------------------------------------------------


def test_list_filters_and_paginates(client: FlaskClient) -> None:
    h, fn = setup(client)
    other_fn = created(client, h, name="other")["id"]
    ids = [made(client, h, fn, "cron", CRON, name=f"c{i}")["id"] for i in range(3)]
    hook = made(client, h, other_fn, "webhook", None, name="w")["id"]
    first = client.get("/v1/triggers?limit=2", headers=h).get_json()
    assert [t["id"] for t in first["items"]] == [hook, ids[2]]
    rest = client.get(f"/v1/triggers?limit=2&cursor={first['next_cursor']}", headers=h).get_json()
    assert [t["id"] for t in rest["items"]] == [ids[1], ids[0]]
    assert rest["next_cursor"] is None
    by_type = client.get("/v1/triggers?type=webhook", headers=h).get_json()["items"]
    assert [t["id"] for t in by_type] == [hook]
    by_fn = client.get(f"/v1/triggers?function_id={fn}", headers=h).get_json()["items"]
    assert sorted(t["id"] for t in by_fn) == ids
    client.post(f"/v1/triggers/{ids[0]}/pause", headers=h)
    paused = client.get("/v1/triggers?status=paused", headers=h).get_json()["items"]
    assert [t["id"] for t in paused] == [ids[0]]
    assert_error(client.get("/v1/triggers?type=sundial", headers=h), 422, "validation_error")


def test_patch_changes_config_and_recomputes_the_slot(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "cron", CRON)
    changed = client.patch(
        f"/v1/triggers/{t['id']}",
        json={"trigger_config": {"schedule": "30 1 * * *", "timezone": "Asia/Tokyo"}},
        headers=h,
    ).get_json()
    slot = dt.datetime.fromisoformat(changed["next_fire_at"]).astimezone(
        dt.timezone(dt.timedelta(hours=9))
    )
    assert (slot.hour, slot.minute) == (1, 30)
    bad = client.patch(
        f"/v1/triggers/{t['id']}", json={"trigger_config": {"schedule": "x"}}, headers=h
    )
    assert_error(bad, 422, "validation_error")
    type_change = client.patch(
        f"/v1/triggers/{t['id']}", json={"trigger_type": "webhook"}, headers=h
    )
    assert_error(type_change, 422, "validation_error")


def test_another_tenant_sees_nothing(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    hb, _ = setup(client, "bob")
    base = f"/v1/triggers/{t['id']}"
    assert client.get("/v1/triggers", headers=hb).get_json()["items"] == []
    assert_error(client.get(base, headers=hb), 404, "not_found")
    assert_error(client.patch(base, json={"name": "x"}, headers=hb), 404, "not_found")
    assert_error(client.delete(base, headers=hb), 404, "not_found")
    for action in ("pause", "resume", "rotate-secret"):
        assert_error(client.post(f"{base}/{action}", headers=hb), 404, "not_found")
    assert_error(client.post(f"{base}/fire", json={}, headers=hb), 404, "not_found")
    assert_error(client.get(f"{base}/events", headers=hb), 404, "not_found")
    assert_error(client.get("/v1/triggers/99999999999", headers=h), 404, "not_found")
    assert client.get(base, headers=h).status_code == 200


def test_delete_keeps_the_executions(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "cron", CRON)
    event = client.post(f"/v1/triggers/{t['id']}/fire", json={"input": 1}, headers=h).get_json()
    assert client.delete(f"/v1/triggers/{t['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/triggers/{t['id']}", headers=h), 404, "not_found")
    assert db.get(Execution, event["execution_id"]) is not None
    assert db.scalar(select(func.count()).select_from(TriggerEvent)) == 0


# -- firing by hand -------------------------------------------------------------------------


def test_fire_creates_a_queued_execution_with_the_event(
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "cron", CRON)
    resp = client.post(f"/v1/triggers/{t['id']}/fire", json={"input": {"x": 1}}, headers=h)
    assert resp.status_code == 202, resp.get_json()
    event = resp.get_json()
    assert event["status"] == "fired"
    assert event["reason"] is None
    assert event["cause"] == {"type": "manual", "trigger_id": t["id"], "trigger_type": "cron"}
    execution = db.get_one(Execution, event["execution_id"])
    assert execution.status == "queued"
    assert execution.input == {"x": 1}
    assert execution.trigger == {
        "trigger_id": t["id"],
        "event_id": event["id"],
        "type": "cron",
        "name": t["name"],
        "cause": event["cause"],
    }
    # The job goes out only after the commit; the test client's transaction is a savepoint
    # of the test's, so nothing is in the executor's queue here.
    events = client.get(f"/v1/triggers/{t['id']}/events", headers=h).get_json()
    assert [e["id"] for e in events["items"]] == [event["id"]]


def test_fire_with_an_idempotency_key_fires_once(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    key = {**h, "Idempotency-Key": "deploy-42"}
    first = client.post(f"/v1/triggers/{t['id']}/fire", json={"input": 1}, headers=key)
    again = client.post(f"/v1/triggers/{t['id']}/fire", json={"input": 1}, headers=key)
    assert first.get_json() == again.get_json()
    assert db.scalar(select(func.count()).select_from(Execution)) == 1
    bad = client.post(
        f"/v1/triggers/{t['id']}/fire", json={}, headers={**h, "Idempotency-Key": "x" * 151}
    )
    assert_error(bad, 422, "validation_error")


def test_paused_trigger_or_function_records_skipped(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "cron", CRON)
    assert client.post(f"/v1/triggers/{t['id']}/pause", headers=h).get_json()["status"] == "paused"
    event = client.post(f"/v1/triggers/{t['id']}/fire", json={}, headers=h).get_json()
    assert (event["status"], event["reason"], event["execution_id"]) == (
        "skipped",
        "the trigger is paused",
        None,
    )
    client.post(f"/v1/triggers/{t['id']}/resume", headers=h)
    client.patch(f"/v1/functions/{fn}", json={"status": "paused"}, headers=h)
    event = client.post(f"/v1/triggers/{t['id']}/fire", json={}, headers=h).get_json()
    assert (event["status"], event["reason"]) == ("skipped", "the function is paused")
    assert db.scalar(select(func.count()).select_from(Execution)) == 0
    skipped = client.get(f"/v1/triggers/{t['id']}/events?status=skipped", headers=h).get_json()
    assert len(skipped["items"]) == 2


@pytest.fixture
def priced(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> FlaskClient:
    """A client of an API whose executions cost something (a base fee of 0.01 GAS)."""
    return app_with(
        settings, session_factory, redis_client, sandbox, function_base_fee=Decimal("0.01")
    )


def test_a_tenant_who_cannot_cover_the_hold_records_skipped(
    priced: FlaskClient, db: Session
) -> None:
    client = priced
    h, fn = setup(client)
    t = made(client, h, fn, "cron", CRON)
    event = client.post(f"/v1/triggers/{t['id']}/fire", json={}, headers=h).get_json()
    assert event["status"] == "skipped"
    assert event["reason"].startswith("insufficient_funds: ")
    # The hold is a run until the function's timeout: the base fee at least.
    assert "0.01 GAS" in event["reason"]
    assert db.scalar(select(func.count()).select_from(Execution)) == 0
    listed = client.get(f"/v1/triggers/{t['id']}/events?status=skipped", headers=h).get_json()
    assert [e["id"] for e in listed["items"]] == [event["id"]]


def test_a_trigger_says_why_it_did_not_run(priced: FlaskClient) -> None:
    client = priced
    h, fn = setup(client)
    quiet = made(client, h, fn, "cron", CRON, name="quiet")
    t = made(client, h, fn, "cron", {"schedule": "*/5 * * * *"})
    assert t["last_event"] is None
    event = client.post(f"/v1/triggers/{t['id']}/fire", json={}, headers=h).get_json()
    shown = client.get(f"/v1/triggers/{t['id']}", headers=h).get_json()["last_event"]
    assert shown == event
    assert shown["status"] == "skipped"
    assert shown["reason"].startswith("insufficient_funds: ")
    # A later event is the one shown; the list shows each trigger's own.
    again = client.post(
        f"/v1/triggers/{t['id']}/fire", json={}, headers={**h, "Idempotency-Key": "second"}
    ).get_json()
    assert again["id"] != event["id"]
    listed = {
        item["id"]: item["last_event"]
        for item in client.get("/v1/triggers", headers=h).get_json()["items"]
    }
    assert listed == {t["id"]: again, quiet["id"]: None}
    paused = client.post(f"/v1/triggers/{t['id']}/pause", headers=h).get_json()
    assert paused["last_event"] == again


# -- webhooks -------------------------------------------------------------------------------


def deliver(
    client: FlaskClient,
    trigger_id: int,
    secret: str | None,
    body: bytes = b'{"order": 7}',
    stamp: int | None = None,
    header: str | None = None,
) -> Any:
    stamp = int(time.time()) if stamp is None else stamp
    if header is None and secret is not None:
        header = f"t={stamp},v1={sign(secret, stamp, body)}"
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-NSL-Signature"] = header
    return client.post(f"/v1/hooks/{trigger_id}", data=body, headers=headers)


def test_a_signed_delivery_fires_with_the_body_as_input(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    assert t["webhook_url"] == f"http://localhost/v1/hooks/{t['id']}"
    secret = t["webhook_secret"]
    assert secret.startswith("whsec_")
    # Shown once: never again.
    assert "whsec_" not in client.get(f"/v1/triggers/{t['id']}", headers=h).get_data(as_text=True)
    resp = deliver(client, t["id"], secret)
    assert resp.status_code == 202, resp.get_json()
    accepted = resp.get_json()
    assert accepted["status"] == "fired"
    execution = db.get_one(Execution, accepted["execution_id"])
    assert execution.input == {"order": 7}
    assert execution.trigger is not None
    assert execution.trigger["cause"]["type"] == "webhook"


def test_a_delivery_the_tenant_cannot_pay_for_is_402_and_recorded_skipped(
    priced: FlaskClient, db: Session
) -> None:
    client = priced
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    err = assert_error(deliver(client, t["id"], t["webhook_secret"]), 402, "payment_required")
    assert err["message"].startswith("insufficient_funds: ")
    (event,) = client.get(f"/v1/triggers/{t['id']}/events", headers=h).get_json()["items"]
    assert (event["status"], event["execution_id"]) == ("skipped", None)
    assert db.scalar(select(func.count()).select_from(Execution)) == 0


def test_forged_stale_replayed_and_unknown_deliveries_are_refused(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    secret = t["webhook_secret"]
    refusals = [
        deliver(client, t["id"], None),  # no signature
        deliver(client, t["id"], "whsec_" + "0" * 64),  # signed with another secret
        deliver(client, t["id"], None, header="t=1,v1=zz"),  # malformed
        deliver(client, t["id"], None, header=f"v1={sign(secret, 1, b'{}')}"),  # no t
        deliver(client, 987654, secret),  # no such trigger
        deliver(client, 2**40, secret),
    ]
    messages = {assert_error(r, 401, "unauthorized")["message"] for r in refusals}
    assert len(messages) == 1  # unknown ids answer exactly like bad signatures
    # A body changed after signing.
    stamp = int(time.time())
    tampered = f"t={stamp},v1={sign(secret, stamp, b'{}')}"
    assert_error(deliver(client, t["id"], None, b'{"a":1}', header=tampered), 401, "unauthorized")
    stale = deliver(client, t["id"], secret, stamp=int(time.time()) - 301)
    assert "300 s" in assert_error(stale, 401, "unauthorized")["message"]
    future = deliver(client, t["id"], secret, stamp=int(time.time()) + 301)
    assert_error(future, 401, "unauthorized")
    # A genuine delivery works once; the same signature again is a replay.
    stamp = int(time.time())
    header = f"t={stamp},v1={sign(secret, stamp, b'{}')}"
    assert deliver(client, t["id"], None, b"{}", header=header).status_code == 202
    replay = deliver(client, t["id"], None, b"{}", header=header)
    assert "replay" in assert_error(replay, 401, "unauthorized")["message"]
    # A trigger of another type has no hook.
    cron = made(client, h, fn, "cron", CRON)
    assert_error(deliver(client, cron["id"], secret), 401, "unauthorized")


def test_oversized_and_non_json_bodies(client: FlaskClient, db: Session) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    big = json.dumps({"x": "a" * (256 * 1024)}).encode()
    assert_error(deliver(client, t["id"], t["webhook_secret"], big), 413, "payload_too_large")
    # A malformed body is a 400, as on every route (tests/api/test_bodies.py).
    for body in (b"{not json", b'"\xff"', b"[" * 65 + b"]" * 65):
        assert_error(deliver(client, t["id"], t["webhook_secret"], body), 400, "bad_request")
    # Any JSON value is an input, and an empty body is null.
    for body, expected in ((b"[1, 2]", [1, 2]), (b'"text"', "text"), (b"", None)):
        resp = deliver(client, t["id"], t["webhook_secret"], body)
        assert resp.status_code == 202, resp.get_json()
        assert db.get_one(Execution, resp.get_json()["execution_id"]).input == expected


def test_rotation_retires_the_old_secret(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    rotated = client.post(f"/v1/triggers/{t['id']}/rotate-secret", headers=h).get_json()
    assert rotated["webhook_secret"] != t["webhook_secret"]
    assert_error(deliver(client, t["id"], t["webhook_secret"]), 401, "unauthorized")
    assert deliver(client, t["id"], rotated["webhook_secret"]).status_code == 202
    cron = made(client, h, fn, "cron", CRON)
    assert_error(
        client.post(f"/v1/triggers/{cron['id']}/rotate-secret", headers=h), 409, "conflict"
    )


def test_paused_hook_is_409_and_recorded(client: FlaskClient) -> None:
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    client.post(f"/v1/triggers/{t['id']}/pause", headers=h)
    assert_error(deliver(client, t["id"], t["webhook_secret"]), 409, "conflict")
    events = client.get(f"/v1/triggers/{t['id']}/events", headers=h).get_json()["items"]
    assert [(e["status"], e["reason"]) for e in events] == [("skipped", "the trigger is paused")]


def test_deliveries_are_rate_limited_per_trigger(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    client = app_with(settings, session_factory, redis_client, sandbox, webhook_rate_limit=2)
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None, name="a")
    other = made(client, h, fn, "webhook", None, name="b")
    codes = [
        deliver(client, t["id"], t["webhook_secret"], f'{{"n":{i}}}'.encode()) for i in range(3)
    ]
    assert [r.status_code for r in codes] == [202, 202, 429]
    assert assert_error(codes[2], 429, "rate_limited")["details"]["retry_after"] >= 1
    # Forged deliveries do not use up a trigger's allowance, and triggers are counted apart.
    assert deliver(client, other["id"], other["webhook_secret"]).status_code == 202


def test_master_key_rotation_rewraps_webhook_secrets(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
    db: Session,
) -> None:
    def keyed(keys: tuple[MasterKey, ...]) -> FlaskClient:
        return app_with(settings, session_factory, redis_client, sandbox, secrets_keys=keys)

    old = MasterKey("old", os.urandom(32))
    new = MasterKey("new", os.urandom(32))
    client = keyed((old,))
    h, fn = setup(client)
    t = made(client, h, fn, "webhook", None)
    rotation = secretbox.rotate_master_key(db, (new, old))
    assert rotation.rewrapped == 1
    assert rotation.remaining == 0
    assert db.get_one(Trigger, t["id"]).hook_master_key_id == "new"
    # The old key can go: the secret still verifies, under the new key alone.
    assert deliver(keyed((new,)), t["id"], t["webhook_secret"]).status_code == 202


def test_triggers_per_tenant_are_capped_and_fire_input_is_bounded(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    client = app_with(settings, session_factory, redis_client, sandbox, triggers_per_tenant=2)
    h, fn = setup(client)
    first = made(client, h, fn, "webhook", None, name="a")
    made(client, h, fn, "webhook", None, name="b")
    assert_error(make(client, h, fn, "webhook", None, name="c"), 409, "conflict")
    hb, fb = setup(client, "bob")
    made(client, hb, fb, "webhook", None, name="a")  # counted per tenant
    big = {"input": "x" * (256 * 1024)}
    resp = client.post(f"/v1/triggers/{first['id']}/fire", json=big, headers=h)
    assert "input" in assert_error(resp, 422, "validation_error")["details"]


def test_concurrent_creates_never_pass_the_cap(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    """Each create on its own thread and connection, committed for real, all at once."""
    cap = 3
    app = create_app(
        dataclasses.replace(settings, triggers_per_tenant=cap),
        session_factory=sessions,
        redis=redis_client,
        sandbox=sandbox,
    )
    h, fn = setup(app.test_client())
    hb, fb = setup(app.test_client(), "bob")

    def create(headers: dict[str, str], function_id: int, i: int) -> Call:
        return lambda client: make(client, headers, function_id, "webhook", None, name=f"t{i}")

    calls = [create(h, fn, i) for i in range(THREADS)] + [create(hb, fb, i) for i in range(cap)]
    answers = race(app, calls)

    mine, bobs = answers[:THREADS], answers[THREADS:]
    assert statuses(mine) == [201] * cap + [409] * (THREADS - cap), bodies(mine)
    for refused in (a for a in mine if a.status_code == 409):
        assert "NSL_TRIGGERS_PER_TENANT" in assert_error(refused, 409, "conflict")["message"]
    # Another tenant's creates do not count against this one's cap.
    assert statuses(bobs) == [201] * cap, bodies(bobs)
    with sessions() as db:
        counts = db.execute(select(Trigger.user_id, func.count()).group_by(Trigger.user_id)).all()
    assert sorted(n for _, n in counts) == [cap, cap]
