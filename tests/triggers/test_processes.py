"""Triggers end to end, with the services as separate processes, as deployed: the clock (two
replicas, killed and restarted), the scheduler's Celery worker (chain follower, price
evaluations) and the executor, which runs what fires."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from neo3.wallet.account import Account
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.models import ChainCursor, Execution, PriceData, PriceFeed, TriggerEvent
from neosl_api.app import create_app
from neosl_api.services.triggers import sign
from neosl_devstack.servers import free_port
from tests.chain import GAS, Chain
from tests.contracts.test_consumer import send
from tests.functions.test_api import created
from tests.gas.test_api import tenant
from tests.processes import kill, running, spawn
from tests.scraping import Samples, scrape
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

ECHO = "function main(input, ctx) { return {input: input, trigger: ctx.trigger}; }"
CLOCK = ["neosl_scheduler.clock"]
EXECUTOR = ["neosl_executor", "--pool", "threads", "--concurrency", "4"]
SCHEDULER = ["neosl_scheduler", "--pool", "solo", "--beat"]


@pytest.fixture
def env(server_env: dict[str, str]) -> dict[str, str]:
    return {
        **server_env,
        "NSL_CRON_MIN_INTERVAL_SECONDS": "1",
        "NSL_CRON_POLL_MS": "100",
        "NSL_PRICE_CHECK_MS": "200",
        "NSL_FOLLOWER_INTERVAL_MS": "200",
    }


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return dataclasses.replace(settings, cron_min_interval=1)


@pytest.fixture
def api(
    fast: Settings, sessions: sessionmaker[Session], redis_client: Redis, sandbox: SandboxPool
) -> FlaskClient:
    return create_app(
        fast, session_factory=sessions, redis=redis_client, sandbox=sandbox
    ).test_client()


@pytest.fixture
def executor(env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    with running(EXECUTOR, env, tmp_path / "executor.log"):
        yield


def trigger(api: FlaskClient, h: dict[str, str], fn: int, kind: str, config: Any) -> Any:
    resp = api.post(
        "/v1/triggers",
        json={
            "name": f"{kind}-{time.monotonic_ns()}",
            "function_id": fn,
            "trigger_type": kind,
            "trigger_config": config,
        },
        headers=h,
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def history(sessions: sessionmaker[Session], trigger_id: int) -> list[TriggerEvent]:
    with sessions() as db:
        return list(
            db.scalars(
                select(TriggerEvent)
                .where(TriggerEvent.trigger_id == trigger_id)
                .order_by(TriggerEvent.id)
            )
        )


def fired(sessions: sessionmaker[Session], trigger_id: int) -> list[TriggerEvent]:
    return [e for e in history(sessions, trigger_id) if e.status == "fired"]


def finished(sessions: sessionmaker[Session], execution_id: int) -> Execution | None:
    with sessions() as db:
        row = db.get_one(Execution, execution_id)
        return row if row.status in ("succeeded", "failed", "timeout") else None


def slots(events: list[TriggerEvent]) -> list[dt.datetime]:
    return sorted(dt.datetime.fromisoformat(e.cause["slot"]) for e in events)


def assert_every_slot_once(events: list[TriggerEvent], every: float) -> None:
    """Consecutive slots ``every`` seconds apart, none missing, none twice."""
    found = slots(events)
    assert len(found) == len({e.cause_key for e in events})
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(found)}
    assert gaps == {every}, found


def test_two_clock_replicas_fire_each_slot_once_and_the_executor_runs_it(
    api: FlaskClient,
    sessions: sessionmaker[Session],
    env: dict[str, str],
    executor: None,
    tmp_path: Path,
) -> None:
    h = tenant(api)
    fn = created(api, h, source_code=ECHO)["id"]
    logs = [tmp_path / "clock-a.log", tmp_path / "clock-b.log"]
    # Each replica exports what it fired and how late (its own figures).
    ports = [free_port(), free_port()]
    with (
        running(CLOCK, {**env, "NSL_METRICS_PORT": str(ports[0])}, logs[0]),
        running(CLOCK, {**env, "NSL_METRICS_PORT": str(ports[1])}, logs[1]),
    ):
        wait_until(
            lambda: all("clock started" in log.read_text() for log in logs), "the clocks to start"
        )
        t = trigger(api, h, fn, "cron", {"schedule": "*/2 * * * * *", "timezone": "Europe/Berlin"})
        wait_until(lambda: len(fired(sessions, t["id"])) >= 5, "five slots to fire", timeout=60)
        api.post(f"/v1/triggers/{t['id']}/pause", headers=h)
        total = len(fired(sessions, t["id"]))

        def exported() -> list[Samples] | None:
            figures = [scrape(port) for port in ports]
            fired_total = sum(f[("neosl_triggers_fired_total", ())] for f in figures)
            return figures if fired_total == total else None

        figures = wait_until(exported, "the clocks to export every fired slot", timeout=30)
    for f in figures:
        fired_here = f[("neosl_triggers_fired_total", ())]
        assert f[("neosl_trigger_fire_lag_seconds_count", ())] == fired_here
        assert f[("neosl_trigger_slots_skipped_total", ())] == 0
    events = history(sessions, t["id"])
    # Every two seconds while both ran, each slot once; none skipped (nothing was missed).
    assert all(e.status == "fired" for e in events)
    assert_every_slot_once(events, 2.0)
    with sessions() as db:
        executions = list(db.scalars(select(Execution).order_by(Execution.id)))
    assert sorted(e.id for e in executions) == sorted(e.execution_id or 0 for e in events)
    last = events[-1]
    done = wait_until(
        lambda: finished(sessions, last.execution_id or 0), "the executor to run it", timeout=60
    )
    assert done.status == "succeeded", done.error
    assert done.result["trigger"] == {
        "trigger_id": t["id"],
        "event_id": last.id,
        "type": "cron",
        "name": t["name"],
        "cause": last.cause,
    }
    assert done.result["input"] == last.cause
    # The fire lag: the event is recorded within a second of its slot.
    lags = [
        (e.timestamp - dt.datetime.fromisoformat(e.cause["slot"])).total_seconds() for e in events
    ]
    assert min(lags) >= 0


def test_a_clock_killed_and_restarted_fires_the_documented_slots(
    api: FlaskClient,
    sessions: sessionmaker[Session],
    env: dict[str, str],
    tmp_path: Path,
    redis_client: Redis,
) -> None:
    h = tenant(api)
    fn = created(api, h, source_code=ECHO)["id"]
    t = trigger(api, h, fn, "cron", {"schedule": "* * * * * *", "timezone": "UTC"})
    clock = spawn(CLOCK, env, tmp_path / "clock-1.log")
    try:
        wait_until(lambda: len(fired(sessions, t["id"])) >= 2, "two slots to fire", timeout=60)
    finally:
        kill(clock, signal.SIGKILL)
    before = history(sessions, t["id"])
    last_slot = slots(before)[-1]
    # No clock runs for a few slots.
    wait_until(
        lambda: dt.datetime.now(dt.UTC) > last_slot + dt.timedelta(seconds=4),
        "four slots to pass with no clock",
        timeout=30,
    )
    with running(CLOCK, env, tmp_path / "clock-2.log"):
        wait_until(
            lambda: len(fired(sessions, t["id"])) >= len(before) + 2,
            "the restarted clock to fire",
            timeout=60,
        )
        api.post(f"/v1/triggers/{t['id']}/pause", headers=h)
    events = history(sessions, t["id"])
    after = events[len(before) :]
    # The first pass of the new clock: the missed slots skipped, the latest one fired.
    missed = [e for e in after if e.status == "skipped"]
    catch_up = next(e for e in after if e.status == "fired")
    assert len(missed) >= 3
    assert catch_up.cause["missed"] == len(missed)
    assert all(e.cause["slot"] < catch_up.cause["slot"] for e in missed)
    # Over the whole run: every slot exactly once, fired or skipped.
    assert_every_slot_once(events, 1.0)


def test_price_trigger_fires_through_the_scheduler_and_the_clock(
    api: FlaskClient,
    sessions: sessionmaker[Session],
    env: dict[str, str],
    executor: None,
    producer: Celery,
    tmp_path: Path,
) -> None:
    h = tenant(api)
    user_id = api.get("/v1/me", headers=h).get_json()["id"]
    fn = created(api, h, source_code=ECHO)["id"]
    with sessions() as db:
        feed = PriceFeed(user_id=user_id, asset_pair="NEO/USD", frequency=5, sources=[])
        db.add(feed)
        db.commit()
        feed_id = feed.id
    config = {"asset_pair": "NEO/USD", "condition": "below", "threshold": 10, "duration": 1}
    t = trigger(api, h, fn, "price", config)

    def price(value: str) -> None:
        with sessions() as db:
            db.add(PriceData(feed_id=feed_id, price=Decimal(value), sources_used=3))
            db.commit()
        # What the pricefeed worker sends after storing a round.
        Dispatcher(producer).send(jobs.EVALUATE_PRICE_TRIGGERS, feed_id=feed_id)

    with (
        running(SCHEDULER, env, tmp_path / "scheduler.log"),
        running(CLOCK, env, tmp_path / "clock.log"),
    ):
        price("12.5")
        price("9.75")  # below 10 from now on; fires once it has held for a second
        event = wait_until(lambda: fired(sessions, t["id"]), "the price trigger", timeout=60)[0]
        price("9.5")  # still below: no second firing
        price("11")  # ends the run: re-armed
        price("8")
        wait_until(lambda: len(fired(sessions, t["id"])) >= 2, "the second run", timeout=60)
    assert len(fired(sessions, t["id"])) == 2
    done = wait_until(
        lambda: finished(sessions, event.execution_id or 0), "the execution", timeout=60
    )
    assert done.status == "succeeded", done.error
    cause = done.result["input"]
    assert (cause["pair"], cause["price"], cause["threshold"], cause["condition"]) == (
        "NEO/USD",
        "9.75000000",
        "10",
        "below",
    )
    assert cause["since"] == cause["price_at"]


def test_webhook_delivery_runs_the_function_with_the_body(
    api: FlaskClient, sessions: sessionmaker[Session], executor: None
) -> None:
    h = tenant(api)
    fn = created(api, h, source_code=ECHO)["id"]
    t = trigger(api, h, fn, "webhook", None)
    body = json.dumps({"order": 42, "items": ["a", "b"]}).encode()
    stamp = int(time.time())
    resp = api.post(
        f"/v1/hooks/{t['id']}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-NSL-Signature": f"t={stamp},v1={sign(t['webhook_secret'], stamp, body)}",
        },
    )
    assert resp.status_code == 202, resp.get_json()
    execution_id = resp.get_json()["execution_id"]
    done = wait_until(lambda: finished(sessions, execution_id), "the execution", timeout=60)
    assert done.status == "succeeded", done.error
    assert done.result["input"] == {"order": 42, "items": ["a", "b"]}
    assert done.result["trigger"]["cause"] == {
        "type": "webhook",
        "trigger_id": t["id"],
        "timestamp": stamp,
    }


@pytest.mark.neo
def test_contract_events_and_gas_transfers_fire_blockchain_triggers(
    api: FlaskClient,
    sessions: sessionmaker[Session],
    env: dict[str, str],
    executor: None,
    chain: Chain,
    tmp_path: Path,
) -> None:
    h = tenant(api)
    fn = created(api, h, source_code=ECHO)["id"]
    owner = Account.create_new()
    chain.fund(owner.address, 5 * GAS)
    consumer = chain.deploy_consumer(owner.address)
    on_set = trigger(
        api, h, fn, "blockchain", {"contract_hash": consumer, "event_name": "ValueSet"}
    )
    only_colour = trigger(
        api,
        h,
        fn,
        "blockchain",
        {
            "contract_hash": consumer,
            "event_name": "ValueSet",
            "filters": [{"index": 0, "equals": "colour"}],
        },
    )
    recipient = Account.create_new().address
    gas_to = trigger(
        api,
        h,
        fn,
        "blockchain",
        {
            "contract_hash": "0xd2a4cff31913016155e38e474a2c06d08be276cf",
            "event_name": "Transfer",
            "filters": [{"index": 1, "equals": recipient}],
        },
    )
    with running(SCHEDULER, env, tmp_path / "scheduler.log"):
        # The follower starts at the current height on its first run: wait for it.
        def following() -> bool:
            with sessions() as db:
                return db.get(ChainCursor, "follower") is not None

        wait_until(following, "the chain follower to start", timeout=60)
        log = send(chain.rpc, owner, consumer, "set", "colour", "blue")
        send(chain.rpc, owner, consumer, "set", "size", "XL")
        transfer = chain.fund(recipient, 3 * GAS)
        wait_until(lambda: len(fired(sessions, on_set["id"])) >= 2, "both ValueSet events")
        wait_until(lambda: fired(sessions, gas_to["id"]), "the GAS transfer")
        # Paused: its subscription is dropped without a restart; resumed: it is back.
        api.post(f"/v1/triggers/{on_set['id']}/pause", headers=h)
        send(chain.rpc, owner, consumer, "set", "colour", "green")
        wait_until(lambda: len(fired(sessions, only_colour["id"])) >= 2, "the second colour")
        api.post(f"/v1/triggers/{on_set['id']}/resume", headers=h)
        send(chain.rpc, owner, consumer, "set", "shape", "round")
        wait_until(lambda: len(fired(sessions, on_set["id"])) >= 3, "the event after resuming")
    set_events = fired(sessions, on_set["id"])
    assert [e.cause["args"] for e in set_events] == [
        ["colour", "blue"],
        ["size", "XL"],
        ["shape", "round"],
    ]
    assert [e.cause["args"] for e in fired(sessions, only_colour["id"])] == [
        ["colour", "blue"],
        ["colour", "green"],
    ]
    first = set_events[0].cause
    assert first["txid"] == log["txid"]
    assert (first["contract"], first["event_name"]) == (consumer, "ValueSet")
    assert isinstance(first["block_index"], int)
    assert isinstance(first["block_time"], int)
    assert set_events[0].cause_key == f"chain:{log['txid']}:{first['notification_index']}"
    (gas_event,) = fired(sessions, gas_to["id"])
    assert gas_event.cause["txid"] == transfer
    assert gas_event.cause["args"][1] == {
        "address": recipient,
        "hash": gas_event.cause["args"][1]["hash"],
    }
    assert gas_event.cause["args"][2] == 3 * GAS
    done = wait_until(
        lambda: finished(sessions, set_events[0].execution_id or 0), "the execution", timeout=60
    )
    assert done.status == "succeeded", done.error
    assert done.result["input"] == first
