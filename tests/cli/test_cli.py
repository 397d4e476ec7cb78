from __future__ import annotations

import json

from sqlalchemy import Engine

from neosl_api.messages import verify_ownership
from tests.clirun import run_cli
from tests.factories import new_account_key


def test_db_upgrade_and_status(engine: Engine, server_env: dict[str, str]) -> None:
    up = run_cli(server_env, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == "database is up to date"
    status = run_cli(server_env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "0000  applied  schema" in status.stdout


def test_config_error_names_the_variable_and_exits_2(server_env: dict[str, str]) -> None:
    env = {k: v for k, v in server_env.items() if k != "REDIS_URL"}
    result = run_cli(env, "db", "status")
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: REDIS_URL is not set"


def test_migrations_need_no_key(server_env: dict[str, str]) -> None:
    """The migration job holds the database's URL, not the API's keys."""
    keyless = ("NSL_SECRET_KEY", "NSL_SECRETS_KEY", "NSL_HOT_WALLET_WIF", "NSL_RELAY_KEY")
    env = {k: v for k, v in server_env.items() if k not in keyless}
    result = run_cli(env, "db", "status")
    assert result.returncode == 0, result.stderr


def test_config_prints_settings_without_secrets(server_env: dict[str, str]) -> None:
    result = run_cli(server_env, "config")
    assert result.returncode == 0
    assert "secret_key = <hidden>" in result.stdout
    assert server_env["NSL_SECRET_KEY"] not in result.stdout
    assert server_env["NSL_SECRETS_KEY"] not in result.stdout


def test_unreachable_database_is_a_one_line_error(server_env: dict[str, str]) -> None:
    env = {**server_env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = run_cli(env, "db", "upgrade")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_devnet_sign_message_prints_a_proof_that_verifies(server_env: dict[str, str]) -> None:
    wif, address = new_account_key()
    challenge = "Register this address with the gas bank: nonce 7c2e ✓"
    plain = run_cli(server_env, "devnet", "sign-message", wif, challenge)
    assert plain.returncode == 0, plain.stderr
    body = json.loads(plain.stdout)
    assert set(body) == {"address", "public_key", "signature"}
    assert body["address"] == address
    verify_ownership(address, challenge, body["public_key"], body["signature"])

    salt = "0f3a6c2d9e8b7a6f5e4d3c2b1a098877"
    salted = run_cli(server_env, "devnet", "sign-message", wif, challenge, "--salt", salt)
    assert salted.returncode == 0, salted.stderr
    body = json.loads(salted.stdout)
    assert body["salt"] == salt
    verify_ownership(address, challenge, body["public_key"], body["signature"], body["salt"])


def test_devnet_sign_message_refuses_a_bad_wif(server_env: dict[str, str]) -> None:
    result = run_cli(server_env, "devnet", "sign-message", "not-a-wif", "hello")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: not a usable WIF key")
    assert "Traceback" not in result.stderr
