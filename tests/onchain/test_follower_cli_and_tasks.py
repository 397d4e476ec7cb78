"""Operator paths of the gas bank: the devnet commands and the follower on a real worker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from neosl import jobs
from neosl.celery_app import make_celery
from neosl.config import Settings
from neosl.models import ChainCursor
from neosl.neo.rpc import NeoRpc, RpcUnavailable
from neosl.onchain.blocks import FOLLOWER_CURSOR
from neosl.tasks import PeriodicTask
from neosl_devstack.stack import Stack
from neosl_gasbank.tasks import ChainTask
from neosl_gasbank.worker import create_worker_app as gasbank_worker_app
from neosl_scheduler.tasks import beat_schedule
from neosl_scheduler.worker import create_worker_app as scheduler_app
from tests.clirun import run_cli
from tests.waiting import wait_until

pytestmark = pytest.mark.neo


@pytest.fixture
def devnet_env(stack: Stack, server_env: dict[str, str]) -> dict[str, str]:
    if stack.neo is None:
        pytest.skip("NEO_RPC_URL names an outside node: its committee wallet is not ours to spend")
    return {
        **server_env,
        "NSL_DEVNET_WALLET": str(stack.neo.committee_wallet_path),
        "NSL_DEVNET_WALLET_PASSWORD": stack.neo.committee_wallet_password,
    }


def test_keygen_fund_and_send(devnet_env: dict[str, str], settings: Settings) -> None:
    keys = run_cli(devnet_env, "devnet", "keygen")
    assert keys.returncode == 0
    lines = dict(line.split(maxsplit=1) for line in keys.stdout.splitlines()[:2])
    address, wif = lines["address"], lines["wif"]
    funded = run_cli(devnet_env, "devnet", "fund", address, "3.5")
    assert funded.returncode == 0, funded.stderr
    assert f"sent 3.5 GAS to {address}" in funded.stdout
    receiver = run_cli(devnet_env, "devnet", "keygen").stdout.split()[1]
    sent = run_cli({**devnet_env, "NSL_DEVNET_SENDER_WIF": wif}, "devnet", "send", receiver, "1.25")
    assert sent.returncode == 0, sent.stderr
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        assert rpc.gas_balance(receiver) == 125_000_000
        assert 0 < rpc.gas_balance(address) < 225_000_000  # minus the 1.25 and the fees


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fund", "NotAnAddress", "1"), "34 characters"),
        (("fund", "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs", "1.123456789"), "at most 8 decimals"),
        (("send", "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs", "1"), "NSL_DEVNET_SENDER_WIF"),
    ],
)
def test_devnet_commands_refuse_bad_input(
    devnet_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run_cli(devnet_env, "devnet", *args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.celery
def test_follow_chain_task_on_a_real_scheduler_worker(
    settings: Settings, committed_db: Engine, redis_client: object
) -> None:
    producer = make_celery(settings, "test-producer")
    app = scheduler_app(settings)
    assert set(beat_schedule(settings)) == {
        "follow-chain",
        "reconcile-withdrawals",
        "reconcile-actions",
        "apply-deposits",
        "reap-executions",
        "purge-executions",
    }
    sessions = sessionmaker(bind=committed_db)

    def cursor() -> ChainCursor | None:
        with sessions() as db:
            return db.get(ChainCursor, FOLLOWER_CURSOR)

    with start_worker(app, pool="solo", perform_ping_check=False, queues=[jobs.SCHEDULER_QUEUE]):
        result = producer.send_task(jobs.FOLLOW_CHAIN.name, queue=jobs.SCHEDULER_QUEUE)
        found = wait_until(cursor, "the follower's cursor", timeout=20)
        assert result.id
    assert found.chain_height is not None
    assert found.position <= found.chain_height


def test_only_one_off_chain_tasks_retry_rpc_outages(settings: Settings) -> None:
    gasbank_app = gasbank_worker_app(settings)
    send = gasbank_app.tasks[jobs.SEND_WITHDRAWAL.name]
    assert isinstance(send, ChainTask)
    assert send.autoretry_for == (RpcUnavailable,)
    assert send.max_retries == 10
    assert send.retry_backoff == 2
    assert send.retry_backoff_max == 60
    # What the beat sends every few seconds never retries: the next tick is the retry.
    for app, job in (
        (gasbank_app, jobs.RECONCILE_WITHDRAWALS),
        (gasbank_app, jobs.APPLY_DEPOSITS),
        (scheduler_app(settings), jobs.FOLLOW_CHAIN),
    ):
        task = app.tasks[job.name]
        assert isinstance(task, PeriodicTask), job.name
        assert not isinstance(task, ChainTask), job.name
        assert task.autoretry_for == (), job.name
        assert task.max_retries == 0, job.name
