from __future__ import annotations

from sqlalchemy import Engine

from tests.cli import run_cli


def test_db_upgrade_and_status(engine: Engine, server_env: dict[str, str]) -> None:
    up = run_cli(server_env, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == "database is up to date"
    status = run_cli(server_env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "0000  applied  schema" in status.stdout


def test_config_error_names_the_variable_and_exits_2(server_env: dict[str, str]) -> None:
    env = {k: v for k, v in server_env.items() if k != "NSL_SECRET_KEY"}
    result = run_cli(env, "db", "status")
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: NSL_SECRET_KEY is not set"


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
