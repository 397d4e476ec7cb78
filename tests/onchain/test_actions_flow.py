"""Functions act on chain, end to end: API → executor (neo.invoke) → relay → chain → neo.call.

A real executor worker and a real gasbank worker consume the jobs; the contract is the
project's Consumer, deployed with the tenant's signer as its only writer.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.gas import ledger
from neosl.models import GasAccount, NeoAction, User
from neosl.onchain import actions, relaybox, signers
from neosl_api.app import create_app
from neosl_executor.worker import create_worker_app as executor_app
from neosl_gasbank import actions as relay_actions
from neosl_gasbank.hot_wallet import load_hot_wallet
from tests import factories
from tests.chain import GAS, Chain
from tests.gas.test_api import tenant
from tests.rpcproxy import FORWARD_THEN_HOLD, HOLD, RpcProxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.neo, pytest.mark.celery]

SERVICE_FEE = Decimal("0.002")
# The relay asks for a balance covering this cap before it test-invokes: tenants here hold
# a few GAS.
MAX_FEE = Decimal(1)
WRITE = """
function main(input, ctx) {
  const position = neo.invoke(input.contract, "set", [input.key, input.value]);
  if (input.fail) throw new Error("changed my mind");
  return { position };
}
"""
READ = """
async function main(input) {
  return await neo.call(input.contract, "get", [input.key]);
}
"""


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, action_service_fee=SERVICE_FEE, action_max_fee=MAX_FEE)


@pytest.fixture
def workers(
    relay_settings: Settings, server_env: dict[str, str], redis_client: Redis, chain: Chain
) -> Iterator[None]:
    """The executor in this process; the gasbank as its own process, as deployed (two
    Celery workers in one process share the Redis transport's poller and lose messages)."""
    hot = load_hot_wallet(relay_settings)
    if chain.rpc.gas_balance(hot.address) < 20 * GAS:
        chain.fund(hot.address, 100 * GAS)
    env = {
        **server_env,
        "NSL_ACTION_SERVICE_FEE": str(SERVICE_FEE),
        "NSL_ACTION_MAX_FEE": str(MAX_FEE),
    }
    ledger = subprocess.Popen(
        [sys.executable, "-m", "neosl_gasbank", "--pool", "solo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    executor: Celery = executor_app(relay_settings)
    try:
        with start_worker(
            executor,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            queues=[jobs.EXECUTOR_QUEUE],
            shutdown_timeout=30,
        ):
            yield
    finally:
        os.killpg(ledger.pid, signal.SIGTERM)
        try:
            ledger.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(ledger.pid, signal.SIGKILL)
            ledger.wait()


@pytest.fixture
def api(
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> FlaskClient:
    return create_app(
        relay_settings, session_factory=sessions, redis=redis_client, sandbox=sandbox
    ).test_client()


def invoke(client: FlaskClient, h: dict[str, str], function_id: int, value: Any) -> dict[str, Any]:
    reply = client.post(
        f"/v1/functions/{function_id}/invoke?wait=20", json={"input": value}, headers=h
    )
    assert reply.status_code == 200, reply.get_json()
    body: dict[str, Any] = reply.get_json()
    return body


def function(client: FlaskClient, h: dict[str, str], source: str) -> int:
    reply = client.post(
        "/v1/functions", json={"name": uuid.uuid4().hex[:12], "source_code": source}, headers=h
    )
    assert reply.status_code == 201, reply.get_json()
    function_id: int = reply.get_json()["id"]
    return function_id


def test_a_function_writes_on_chain_and_another_reads_it_back(
    api: FlaskClient,
    chain: Chain,
    sessions: sessionmaker[Session],
    workers: None,
    producer: Celery,
) -> None:
    h = tenant(api)
    user_id = api.get("/v1/me", headers=h).get_json()["id"]
    with sessions() as db:
        account = factories.make_account(db, db.get_one(User, user_id))
        factories.credit(db, account, "3")
        db.commit()
        account_id = account.id
    signer = api.get("/v1/neo/signer", headers=h).get_json()
    consumer = chain.deploy_consumer(signer["address"])
    writer, reader = function(api, h, WRITE), function(api, h, READ)
    key = f"k{uuid.uuid4().hex[:8]}"

    # A failed execution's actions are never queued.
    failed = invoke(api, h, writer, {"contract": consumer, "key": key, "value": "no", "fail": True})
    assert failed["status"] == "failed"
    assert api.get(f"/v1/executions/{failed['id']}", headers=h).get_json()["actions"] == []

    done = invoke(api, h, writer, {"contract": consumer, "key": key, "value": "hello chain"})
    assert (done["status"], done["result"]) == ("succeeded", {"position": 0})

    def settled() -> dict[str, Any] | None:
        # What the scheduler's beat does in a deployment: ask the gasbank to settle.
        Dispatcher(producer).send(jobs.RECONCILE_ACTIONS)
        detail = api.get(f"/v1/executions/{done['id']}", headers=h).get_json()
        (action,) = detail["actions"]
        return action if action["status"] in ("confirmed", "failed") else None

    action = wait_until(settled, "the action to settle", timeout=60, every=0.5)
    assert action["status"] == "confirmed", action["failure_reason"]
    assert (action["method"], action["args"]) == ("set", [key, "hello chain"])
    read = invoke(api, h, reader, {"contract": consumer, "key": key})
    assert (read["status"], read["result"]) == ("succeeded", "hello chain")

    # Charged exactly what the chain took for the transaction, plus the service fee.
    raw = chain.rpc.call("getrawtransaction", [action["tx_hash"], True])
    app_log = chain.rpc.application_log(action["tx_hash"])
    assert app_log is not None
    assert app_log["executions"][0]["vmstate"] == "HALT"
    taken = (Decimal(int(raw["sysfee"])) + Decimal(int(raw["netfee"]))) / 10**8
    assert Decimal(action["fee_charged"]) == taken + SERVICE_FEE
    with sessions() as db:
        assert db.get_one(GasAccount, account_id).balance == Decimal(3) - taken - SERVICE_FEE
        assert ledger.verify(db) == []
        (row,) = db.scalars(select(NeoAction).where(NeoAction.user_id == user_id)).all()
        assert row.execution_id == done["id"]


def test_an_argument_that_cannot_be_mapped_fails_the_execution(
    api: FlaskClient, sessions: sessionmaker[Session], workers: None
) -> None:
    h = tenant(api)
    writer = function(api, h, WRITE)
    consumer = "0x" + "ab" * 20
    done = invoke(api, h, writer, {"contract": consumer, "key": "k", "value": 1.5})
    assert done["status"] == "failed"
    assert done["error"] == "neo.invoke #0 (set): args[1]: 1.5 is not an integer", done["error"]
    assert done["result"] is None
    with sessions() as db:
        assert db.scalars(select(NeoAction)).all() == []


@pytest.mark.parametrize("mode", [HOLD, FORWARD_THEN_HOLD])
def test_sigkill_of_the_relaying_worker_while_it_sends(
    mode: str,
    relay_settings: Settings,
    server_env: dict[str, str],
    sessions: sessionmaker[Session],
    chain: Chain,
    producer: Celery,
) -> None:
    """The gasbank worker is SIGKILLed with the signed transaction stored and its send
    cut off (HOLD: the node never got it; FORWARD_THEN_HOLD: it did). A later pass sends
    the same bytes: exactly one transaction on chain, the right status, an exact ledger."""
    hot = load_hot_wallet(relay_settings)
    if chain.rpc.gas_balance(hot.address) < 20 * GAS:
        chain.fund(hot.address, 100 * GAS)
    with sessions() as db:
        user = factories.make_user(db)
        account = factories.make_account(db, user)
        factories.credit(db, account, "5")
        signer = signers.get_or_create(db, user.id, relaybox.relay_public_key(relay_settings))
        db.commit()
        user_id, account_id, signer_address = user.id, account.id, signer.address
    consumer = chain.deploy_consumer(signer_address)
    with RpcProxy(relay_settings.neo_rpc_url) as proxy:
        proxy.modes["sendrawtransaction"] = mode
        env = {
            **server_env,
            "NEO_RPC_URL": proxy.url,
            "NSL_ACTION_SERVICE_FEE": str(SERVICE_FEE),
            "NSL_ACTION_MAX_FEE": str(MAX_FEE),
        }
        env.pop("NEO_RPC_URLS", None)
        worker = subprocess.Popen(
            [sys.executable, "-m", "neosl_gasbank", "--pool", "solo"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with sessions() as db:
                call = actions.check(consumer, "set", ["k", "killed mid-send"])
                action_id = actions.queue(db, Dispatcher(producer), user_id, call, limit=100).id
                db.commit()
            assert proxy.held.wait(60), "the worker never sent the transaction"
            with sessions() as db:
                stored = db.get_one(NeoAction, action_id)
                assert (stored.status, stored.tx_hash is not None) == ("pending", True)
            hot_before = chain.rpc.gas_balance(hot.address)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            proxy.release.set()

    def settled() -> NeoAction | None:
        relay_actions.reconcile(sessions, chain.rpc, relay_settings, hot)
        with sessions() as db:
            action = db.get_one(NeoAction, action_id)
        return action if action.status in ("confirmed", "failed") else None

    action = wait_until(settled, "the action to settle", timeout=60)
    assert action.status == "confirmed", action.failure_reason
    assert action.tx_hash == stored.tx_hash
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    taken = int(raw["sysfee"]) + int(raw["netfee"])
    # FORWARD_THEN_HOLD: the node had it before the kill; HOLD: only the re-send reached it.
    spent = hot_before - chain.rpc.gas_balance(hot.address)
    assert spent in (0, taken) if mode == FORWARD_THEN_HOLD else spent == taken
    with sessions() as db:
        assert db.get_one(GasAccount, account_id).balance == Decimal(5) - (
            Decimal(taken) / 10**8 + SERVICE_FEE
        )
        assert ledger.verify(db) == []
        assert len(db.scalars(select(NeoAction).where(NeoAction.user_id == user_id)).all()) == 1
