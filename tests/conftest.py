"""Real servers for every test: embedded PostgreSQL, Redis and a Neo N3 node.

Started once per test session with throw-away data and random ports. When DATABASE_URL,
REDIS_URL or NEO_RPC_URL are set, those servers are used instead; the tests then wipe the
database and Redis they are given, so the database's name must contain "test".
If NSL_TESTCONTAINERS=1 and a Docker engine answers, PostgreSQL and Redis come from
containers instead (optional; never required).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from neosl import migrate
from neosl.celery_app import make_celery
from neosl.config import Settings, load_settings
from neosl.db import make_engine
from neosl.functions.sandbox import SandboxPool
from neosl.models import Base
from neosl.neo.rpc import NeoRpc
from neosl_api.app import create_app
from neosl_devstack.stack import Ports, Stack
from neosl_gasbank.hot_wallet import HotWallet, load_hot_wallet
from tests import containers
from tests.chain import GAS, Chain


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The embedded servers (only those the environment does not name)."""
    env = dict(os.environ)
    env.update(containers.start_if_requested())
    stack = Stack(
        root=tmp_path_factory.mktemp("stack"),
        ports=Ports.random(),
        durable=False,
        database="neosl_test",
        neo_block_ms=250,
        env=env,
    )
    stack.started_env = {**env, **stack.start()}
    try:
        yield stack
    finally:
        stack.stop()
        containers.stop()


@pytest.fixture(scope="session")
def server_env(stack: Stack) -> dict[str, str]:
    """The environment the application needs, with every server running."""
    env = dict(stack.started_env)
    # An executor started by a test prestarts a couple of sandbox processes, not 64.
    env.setdefault("NSL_SANDBOX_WARM", "2")
    return env


@pytest.fixture(scope="session")
def settings(server_env: dict[str, str]) -> Settings:
    return load_settings(server_env)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    database = make_url(settings.database_url).database or ""
    if "test" not in database:
        pytest.exit(f"refusing to wipe database {database!r}: its name must contain 'test'", 2)
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine, settings.db_dir)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test.

    Sessions bound to it turn their commits into SAVEPOINT releases, so service code
    commits as usual and nothing reaches the database for the next test.
    """
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def committed_db(engine: Engine) -> Iterator[Engine]:
    """For tests whose data must be seen by other processes (workers, the CLI).

    Every table is emptied afterwards.
    """
    yield engine
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxPool]:
    """One pool of sandbox processes for every app of the run (compiling sources)."""
    pool = SandboxPool(max_processes=2)
    yield pool
    pool.close()


@pytest.fixture
def app(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> Flask:
    return create_app(
        settings, session_factory=session_factory, redis=redis_client, sandbox=sandbox
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


# Integration fixtures: commits, the chain, jobs.
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
