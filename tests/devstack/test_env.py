"""`neosl-dev env` exports what the running stack's `neosl-dev up` recorded in its data folder,
whatever the shell's own variables say, says so when no stack runs there, and starts fast.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from neosl_devstack.datadir import RunningStack, process_start, write_running

pytestmark = pytest.mark.slow

EXPORTS = {
    "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:41000/neosl",
    "REDIS_URL": "redis://127.0.0.1:41001/0",
    "NEO_RPC_URL": "http://127.0.0.1:41002",
    "API": "http://127.0.0.1:41004",
    "NSL_DEVNET_WALLET": "/somewhere/neo/committee-wallet.json",
}


def record(pid: int) -> RunningStack:
    return RunningStack(
        pid=pid,
        started=process_start(pid),
        ports={"api": 41004, "flower": 41005, "metrics": 41010, "postgres": 41000},
        flower_url="http://127.0.0.1:41005",
        exports=EXPORTS,
        # The stack's environment set NSL_RELAY_KEY: not one of those kept in the folder.
        secrets=["NSL_SECRET_KEY", "NSL_SECRETS_KEY"],
    )


def neosl_dev_env(root: Path) -> subprocess.CompletedProcess[str]:
    # Another shell: none of the variables `neosl-dev up` was started with.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSL_")}
    env["NSL_DEV_PG_PORT"] = "1"  # another stack's port: not what `env` reports
    return subprocess.run(
        [sys.executable, "-m", "neosl_devstack.cli", "--dir", str(root), "env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exported(stdout: str) -> dict[str, str]:
    pairs = (shlex.split(line.removeprefix("export "))[0] for line in stdout.splitlines())
    return dict(pair.split("=", 1) for pair in pairs)


def test_env_exports_what_the_running_stack_recorded(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(
        "NSL_SECRET_KEY=one\nNSL_SECRETS_KEY=two\nNSL_RELAY_KEY=three\n"
    )
    # A live process stands for `neosl-dev up`: this one.
    write_running(tmp_path, record(os.getpid()))
    assert (tmp_path / "stack.json").stat().st_mode & 0o077 == 0
    done = neosl_dev_env(tmp_path)
    assert done.returncode == 0, done.stderr
    assert exported(done.stdout) == {"NSL_SECRET_KEY": "one", "NSL_SECRETS_KEY": "two", **EXPORTS}


def test_env_says_when_no_stack_runs(tmp_path: Path) -> None:
    missing = neosl_dev_env(tmp_path / "nothing")
    assert missing.returncode == 1
    assert "no dev stack data in" in missing.stderr

    never = neosl_dev_env(tmp_path)
    assert (never.returncode, never.stdout) == (1, "")
    assert f"no dev stack is running in {tmp_path}" in never.stderr

    # Killed: its record stays, naming a process that is gone.
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    write_running(tmp_path, record(int(ended.stdout)))
    killed = neosl_dev_env(tmp_path)
    assert (killed.returncode, killed.stdout) == (1, "")
    assert "ended without stopping cleanly" in killed.stderr

    # A pid now given to another process: its start time differs.
    reused = record(os.getpid())
    write_running(tmp_path, replace(reused, started="1"))
    assert neosl_dev_env(tmp_path).returncode == 1

    (tmp_path / "stack.json").write_text("{}")
    unreadable = neosl_dev_env(tmp_path)
    assert unreadable.returncode == 1
    assert "cannot read" in unreadable.stderr


# What would make `neosl-dev env` and `neosl-dev --help` slow to start.
HEAVY = ("sqlalchemy", "honcho", "neo3", "psycopg", "redis", "neosl_devstack.markets")


def test_env_and_help_import_nothing_heavy(tmp_path: Path) -> None:
    write_running(tmp_path, record(os.getpid()))
    script = f"""
import contextlib, io, sys
from neosl_devstack.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["--dir", {str(tmp_path)!r}, "env"]) == 0
    try:
        main(["--help"])
    except SystemExit:
        pass
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r} or m in {HEAVY!r})))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
