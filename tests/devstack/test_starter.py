"""The dev stack's starter balance: a new tenant can invoke at once, from a real deposit."""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.functions.sandbox import SandboxPool
from neosl.gas import ledger
from neosl.models import GasAccount, UnmatchedDeposit
from neosl_api.app import create_app
from neosl_devstack import starter
from tests.chain import GAS, Chain

pytestmark = pytest.mark.neo

STARTER = Decimal(10)


@pytest.fixture
def faucet(tmp_path: Path) -> str:
    return starter.faucet_wif(tmp_path)


@pytest.fixture
def dev(settings: Settings, faucet: str) -> Settings:
    return dataclasses.replace(
        settings,
        dev_starter_gas=STARTER,
        dev_faucet_address=starter.faucet_address(faucet),
        function_base_fee=Decimal("0.001"),
        function_fee_per_100ms=Decimal("0.0001"),
    )


def register(client: object, name: str) -> dict[str, str]:
    reply = client.post(  # type: ignore[attr-defined]
        "/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "starter-" + name},
    )
    assert reply.status_code == 201, reply.get_json()
    return {"Authorization": f"Bearer {reply.get_json()['api_key']}"}


def test_a_new_tenant_starts_with_a_real_deposit_and_invokes_at_once(
    chain: Chain,
    dev: Settings,
    faucet: str,
    committed_db: Engine,
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    hot = dev.deposit_address
    assert hot is not None
    before = chain.rpc.gas_balance(hot)
    made = starter.fill(chain.rpc, committed_db, chain.wallet, chain.password, faucet, hot, STARTER)
    assert made == starter.POOL_SIZE
    # Real GAS: the hot wallet holds every deposit of the pool.
    assert chain.rpc.gas_balance(hot) - before == starter.POOL_SIZE * 10 * GAS
    # Full enough: nothing more is made.
    assert (
        starter.fill(chain.rpc, committed_db, chain.wallet, chain.password, faucet, hot, STARTER)
        == 0
    )
    sessions = sessionmaker(bind=committed_db, expire_on_commit=False)
    app = create_app(dev, session_factory=sessions, redis=redis_client, sandbox=sandbox)
    client = app.test_client()
    h = register(client, "newcomer")
    (account,) = client.get("/v1/gas/accounts", headers=h).get_json()["items"]
    assert (account["balance"], account["is_default"]) == ("10", True)
    fn = client.post(
        "/v1/functions", json={"name": "hi", "source_code": "function main() {}"}, headers=h
    ).get_json()
    assert client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=h).status_code == 202
    # Tenants registering at once each get a deposit of their own.
    heads: list[dict[str, str]] = []
    threads = [
        threading.Thread(target=lambda i=i: heads.append(register(app.test_client(), f"tenant{i}")))
        for i in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(heads) == 5
    with Session(committed_db) as db:
        given = db.scalars(
            select(UnmatchedDeposit).where(UnmatchedDeposit.credited_transaction_id.is_not(None))
        ).all()
        assert len(given) == len({d.id for d in given}) == 6
        assert starter.ready(committed_db, dev.dev_faucet_address or "", STARTER) == 44
        balances = db.scalars(select(GasAccount.balance).where(GasAccount.is_default)).all()
        assert sorted(balances)[-5:] == [STARTER] * 5
        assert ledger.verify(db) == []


def test_no_starter_balance_without_the_setting(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: Redis
) -> None:
    assert settings.dev_starter_gas == 0
    client = create_app(settings, session_factory=session_factory, redis=redis_client).test_client()
    h = register(client, "plain")
    assert client.get("/v1/gas/accounts", headers=h).get_json()["items"] == []
