"""``nsl``, the tenant's command line, against the real API served over HTTP on the test
database: login and its 0600 file, deploy from a file, secrets from standard input, tables
and ``--json``, exit codes, an address proven from a WIF, a withdrawal, ``--help``
everywhere."""

from __future__ import annotations

import io
import json
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from neosl.models import GasAccount, Secret
from neosl_client import Client
from neosl_client.cli import build_parser, main
from tests import factories
from tests.envvars import ROOT
from tests.serving import serving

HELLO = "function main(input, ctx) { console.log('hi'); return {hello: input && input.name}; }"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def api(app: Flask) -> Iterator[str]:
    """The test app on a real HTTP port (one request at a time: it shares the test's
    database connection)."""
    with serving(make_server("127.0.0.1", 0, app, threaded=False)) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config" / "nsl.json"
    monkeypatch.setenv("NSL_CONFIG", str(config))
    for name in ("NSL_API_URL", "NSL_API_KEY", "NSL_WALLET_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return config


def nsl(*argv: str, stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def tenant(api: str, env: Path) -> str:
    with Client(api) as anonymous:
        key = anonymous.auth.register("cli-tenant", "cli@example.com", "correct horse battery")[
            "api_key"
        ]
    done = nsl("login", "--url", api, stdin=key + "\n")
    assert done.code == 0, done.err
    return key


def test_login_stores_the_key_in_a_private_file(tenant: str, env: Path) -> None:
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert json.loads(env.read_text())["api_key"] == tenant
    whoami = nsl("--json", "whoami")
    assert whoami.code == 0
    assert whoami.json()["username"] == "cli-tenant"


def test_a_function_is_deployed_from_a_file_and_invoked(
    tenant: str, tmp_path: Path, db: Session
) -> None:
    source = tmp_path / "hello.js"
    source.write_text(HELLO)
    created = nsl(
        "--json", "functions", "deploy", str(source), "--secret", "API_TOKEN", "--timeout", "10"
    )
    assert created.code == 0, created.err
    fn = created.json()
    assert isinstance(fn, dict)
    assert (fn["name"], fn["version"], fn["timeout"], fn["secrets"]) == (
        "hello",
        1,
        10,
        ["API_TOKEN"],
    )
    source.write_text(HELLO.replace("hi", "hello again"))
    updated = nsl("--json", "functions", "deploy", str(source), "--name", "hello")
    assert updated.json()["version"] == 2

    table = nsl("functions", "list")
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "VERSION"]
    assert row.split()[1:3] == ["hello", "2"]

    queued = nsl("--json", "functions", "invoke", "hello", "--input", '{"name": "Neo"}')
    assert queued.code == 0, queued.err
    execution_id = queued.json()["execution_id"]
    listed = nsl("--json", "executions", "list", "--function", "hello")
    assert [e["id"] for e in listed.json()] == [execution_id]


def test_a_secret_is_read_from_standard_input_only(tenant: str, db: Session) -> None:
    done = nsl("secrets", "set", "API_TOKEN", stdin="s3cret value\n")
    assert done.code == 0, done.err
    assert "s3cret" not in done.out
    # The value as an argument is a usage error: it would stay in the shell's history.
    assert nsl("secrets", "set", "API_TOKEN", "s3cret").code == 2
    assert nsl("secrets", "set", "EMPTY", stdin="").code == 2
    names = nsl("--json", "secrets", "list").json()
    assert [s["name"] for s in names] == ["API_TOKEN"]
    (stored,) = db.scalars(select(Secret)).all()
    assert stored.name == "API_TOKEN"
    assert "s3cret" not in stored.value


def test_a_cron_trigger_is_created_and_paused(tenant: str, tmp_path: Path) -> None:
    source = tmp_path / "tick.js"
    source.write_text(HELLO)
    assert nsl("functions", "deploy", str(source)).code == 0
    created = nsl("--json", "triggers", "create", "cron", "tick", "--schedule", "*/5 * * * *")
    assert created.code == 0, created.err
    trigger_id = created.json()["id"]
    assert nsl("--json", "triggers", "pause", str(trigger_id)).json()["status"] == "paused"
    assert "tick-cron" in nsl("triggers", "list").out
    # A cron trigger without a schedule: refused before any call.
    assert nsl("triggers", "create", "cron", "tick").code == 2


def test_sources_of_a_pair_and_a_feed_that_reads_usdt_for_usd(tenant: str) -> None:
    listed = nsl("feeds", "sources", "--pair", "NEO/USD")
    assert listed.code == 0, listed.err
    # A table of the sources whose markets price the pair; USDT ones only when asked for.
    assert "coingecko" in listed.out
    assert "binance" not in listed.out
    wide = nsl("--json", "feeds", "sources", "--pair", "NEO/USD", "--usdt-as-usd").json()
    assert {s["name"]: s["market"] for s in wide}["binance"] == "NEO/USDT"
    refused = nsl("feeds", "create", "NEO/USD", "--source", "binance")
    assert refused.code == 1
    assert "set usdt_as_usd" in refused.err
    made = nsl("--json", "feeds", "create", "NEO/USD", "--source", "binance", "--usdt-as-usd")
    assert made.code == 0, made.err
    assert made.json()["sources"] == [{"name": "binance", "market": "NEO/USDT"}]


def test_exit_codes_say_who_refused(tenant: str) -> None:
    missing = nsl("functions", "get", "999999")
    assert missing.code == 1
    assert "404 not_found" in missing.err
    invalid = nsl("feeds", "create", "NOT A PAIR", "--source", "binance")
    assert invalid.code == 1
    assert "422" in invalid.err
    assert nsl("functions", "frobnicate").code == 2
    assert nsl("functions", "get", "no-such-name").code == 2


def test_an_address_proven_from_a_wif_and_a_withdrawal(tenant: str, db: Session) -> None:
    wif, address = factories.new_account_key()
    # The WIF from standard input, not the command line.
    proven = nsl("--json", "gas", "prove", address, "--wif", stdin=wif + "\n")
    assert proven.code == 0, proven.err
    account = proven.json()
    assert isinstance(account, dict)
    assert account["address"] == address
    other_wif, _ = factories.new_account_key()
    assert nsl("gas", "prove", address, "--wif", stdin=other_wif + "\n").code == 2
    factories.credit(db, db.get_one(GasAccount, account["id"]), "3")
    db.commit()
    withdrawn = nsl("--json", "gas", "withdraw", str(account["id"]), "1.25")
    assert withdrawn.code == 0, withdrawn.err
    assert withdrawn.json()["amount"] == "1.25"
    accounts = nsl("--json", "gas", "accounts").json()
    assert Decimal(accounts[0]["balance"]) == Decimal("1.75")


def test_without_a_login_the_command_says_how(env: Path) -> None:
    done = nsl("functions", "list")
    assert done.code == 2
    assert "nsl login" in done.err


def _commands(parser: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*prefix, name))


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = list(_commands(build_parser()))
    assert len(commands) > 30
    for command in commands:
        assert main([*command, "--help"]) == 0, command
        assert "usage: nsl" in capsys.readouterr().out


@pytest.mark.slow
def test_the_command_is_installed() -> None:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/nsl"), "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "Exit codes" in done.stdout
