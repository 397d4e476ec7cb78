"""`neosl-dev up` killed with SIGKILL leaves nothing running, and `neosl-dev env` tells the truth.

`neosl-dev env`, run from a shell without the variables `neosl-dev up` was started with,
names that stack's ports and exports the API's URL; once `neosl-dev up` is killed, none of
the processes it started is left (the API, the workers, their pools and sandbox processes,
the servers), its ports are free, and `neosl-dev env` says no stack runs there. Flower
gets the folder for its metrics that it would not create itself.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from neosl_devstack.servers import port_is_open
from tests.e2e.test_dev_stack import STACK_VARIABLES, DevStack
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux's parent-death signal"),
]


def neosl_dev_env(data: Path) -> subprocess.CompletedProcess[str]:
    # Another shell: none of the dev stack's variables, nor of its ports.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NSL_") and k not in STACK_VARIABLES and k != "API"
    }
    return subprocess.run(
        [sys.executable, "-m", "neosl_devstack.cli", "--dir", str(data), "env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def naming(text: str) -> list[str]:
    """The living processes whose command line or environment holds ``text``, from /proc."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] == "Z":
            continue
        if needle in cmdline or needle in environ:
            found.append(f"{entry.name} {cmdline.replace(b'\0', b' ').decode(errors='replace')}")
    return found


def test_a_killed_dev_stack_leaves_nothing_running(tmp_path: Path, repo_root: Path) -> None:
    stack = DevStack(tmp_path, repo_root)
    data = tmp_path / ".dev"
    with stack.running() as proc:
        stack.wait_ready(proc)

        done = neosl_dev_env(data)
        assert done.returncode == 0, done.stderr
        exported = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1)
            for line in done.stdout.splitlines()
        )
        assert exported["API"] == stack.api
        assert exported["DATABASE_URL"].startswith(
            f"postgresql+psycopg://postgres@127.0.0.1:{stack.ports['pg']}/"
        )
        assert exported["REDIS_URL"] == f"redis://127.0.0.1:{stack.ports['redis']}/0"
        assert exported["NEO_RPC_URL"] == stack.rpc
        assert exported["NSL_DEVNET_WALLET"] == str(data.resolve() / "neo/committee-wallet.json")
        assert {"NSL_SECRET_KEY", "NSL_SECRETS_KEY", "NSL_HOT_WALLET_WIF"} <= set(exported)
        record = json.loads((data / "stack.json").read_text())
        assert record["pid"] == proc.pid
        assert record["ports"] == {
            "api": stack.ports["api"],
            "flower": stack.ports["flower"],
            "metrics": stack.metrics_base,
            "postgres": stack.ports["pg"],
            "redis": stack.ports["redis"],
            "neo_rpc": stack.ports["rpc"],
            "neo_p2p": stack.ports["p2p"],
        }
        assert record["flower_url"] == f"http://127.0.0.1:{stack.ports['flower']}"

        # Flower counts the workers' events in its folder (it would not create it).
        flower = data / "metrics" / "flower"
        wait_until(lambda: any(flower.glob("*.db")), "Flower's counts", timeout=60)
        flower_lines = [ln for ln in stack.log().splitlines() if " flower " in ln]
        assert not [ln for ln in flower_lines if "Error" in ln], flower_lines

        # Everything it started, sandbox processes and PostgreSQL's backends included (they
        # keep neither our environment nor a command line naming the data folder).
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = {" ".join(p.cmdline()[:3]) for p in tree}
        assert any("gunicorn" in n for n in names), names
        assert any("sandbox.child" in n for n in names), names
        assert any(n.startswith("postgres:") for n in names), names
        assert naming(str(data))

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        def left() -> list[str]:
            alive = []
            for p in tree:
                with suppress(psutil.NoSuchProcess):
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{p.pid} {' '.join(p.cmdline())}")
            return alive + stack.leftovers() + naming(str(data))

        # Each process gets its stop signal; what does not stop in 10 s is killed.
        try:
            wait_until(lambda: not left(), "no process of the stack left", timeout=60, every=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {left()}") from None
        print(f"killed `neosl-dev up` with {len(tree)} processes below it: none left")

    for name, port in stack.ports.items():
        assert not port_is_open("127.0.0.1", port), f"{name} port {port} still open"
    gone = neosl_dev_env(data)
    assert (gone.returncode, gone.stdout) == (1, "")
    assert f"no dev stack is running in {data.resolve()}" in gone.stderr
