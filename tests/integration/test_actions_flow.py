"""Functions act on chain, end to end: API → executor (neo.invoke) → relay → chain → neo.call.

A real executor worker and a real gas-ledger worker consume the jobs; the contract is the
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

from neosl import balances, jobs
from neosl.config import Settings
from neosl.models import GasAccount, NeoAction, User
from neosl.sandbox import SandboxPool
from neosl_api.app import create_app
from neosl_executor.worker import create_worker_app as executor_app
from neosl_gas_ledger.hot_wallet import load_hot_wallet
from tests import factories
from tests.chain import GAS, Chain
from tests.integration.test_gas_api import tenant
from tests.waiting import wait_until

pytestmark = [pytest.mark.neo, pytest.mark.celery]

SERVICE_FEE = Decimal("0.002")
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
    return dataclasses.replace(settings, action_service_fee=SERVICE_FEE)


@pytest.fixture
def workers(
    relay_settings: Settings, server_env: dict[str, str], redis_client: Redis, chain: Chain
) -> Iterator[None]:
    """The executor in this process; the gas-ledger as its own process, as deployed (two
    Celery workers in one process share the Redis transport's poller and lose messages)."""
    hot = load_hot_wallet(relay_settings)
    if chain.rpc.gas_balance(hot.address) < 20 * GAS:
        chain.fund(hot.address, 100 * GAS)
    env = {**server_env, "NSL_ACTION_SERVICE_FEE": str(SERVICE_FEE)}
    ledger = subprocess.Popen(
        [sys.executable, "-m", "neosl_gas_ledger", "--pool", "solo"],
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
        detail = api.get(f"/v1/executions/{done['id']}", headers=h).get_json()
        (action,) = detail["actions"]
        return action if action["status"] in ("confirmed", "failed") else None

    action = wait_until(settled, "the action to settle", timeout=60)
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
        assert balances.verify(db) == []
        (row,) = db.scalars(select(NeoAction).where(NeoAction.user_id == user_id)).all()
        assert row.execution_id == done["id"]
