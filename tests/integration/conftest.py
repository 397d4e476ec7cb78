"""Fixtures shared by the integration tests that commit, use the chain or send jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from neosl.celery_app import make_celery
from neosl.config import Settings
from neosl.neo.rpc import NeoRpc
from neosl_devstack.stack import Stack
from neosl_gas_ledger.hot_wallet import HotWallet, load_hot_wallet
from tests.chain import GAS, Chain


@pytest.fixture
def chain(stack: Stack, settings: Settings) -> Iterator[Chain]:
    if stack.neo is None:
        pytest.skip("NEO_RPC_URL names an outside node: its committee wallet is not ours to spend")
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        yield Chain(rpc, stack.neo.committee_wallet_path, stack.neo.committee_wallet_password)


@pytest.fixture
def sessions(committed_db: Engine) -> sessionmaker[Session]:
    """Sessions on the engine itself: commits are real, other processes see them."""
    return sessionmaker(bind=committed_db, expire_on_commit=False)


@pytest.fixture
def producer(settings: Settings, redis_client: object) -> Iterator[Celery]:
    app = make_celery(settings, "test-producer")
    yield app
    app.close()


@pytest.fixture
def hot(chain: Chain, settings: Settings) -> HotWallet:
    """The relay's hot wallet, holding enough GAS for a test's fees and withdrawals."""
    wallet = load_hot_wallet(settings)
    if chain.rpc.gas_balance(wallet.address) < 50 * GAS:
        chain.fund(wallet.address, 100 * GAS)
    return wallet
