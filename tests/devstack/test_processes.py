"""Nothing ``neosl-dev up`` starts outlives it: its Procfile processes with all they start,
and its servers.

A runner in a process of its own runs commands whose trees hold what escapes a simple
parent-death signal (a background child, a process in a session of its own, an orphan, one
that ignores SIGTERM); however that process ends (SIGKILL, SIGTERM, Ctrl-C, one of its
commands exiting), none of them is left. A server dies with the process that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from neosl_devstack.servers import free_port, port_is_open
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux's parent-death signal"),
]

GRACE = 2.0

RUNNER = """
import os, sys
from neosl_devstack.processes import Runner

runner = Runner(sys.stdout, grace=float(sys.argv[1]))
for arg in sys.argv[2:]:
    name, _, command = arg.partition("=")
    runner.add(name, command, env=dict(os.environ))
sys.exit(runner.run())
"""

# A background child; one in a session of its own; an orphan (its parent, a subshell, is
# gone at once); the command itself.
TREE = "echo tree up; sleep 1000 & setsid sleep 1001 & (sleep 1002 &); exec sleep 1003"
# Ignores SIGTERM, as does what it runs: only SIGKILL ends it.
STUBBORN = "trap '' TERM; sleep 1004"
SLEEPS = {str(n) for n in range(1000, 1005)}


def marked(marker: str) -> list[psutil.Process]:
    """The living processes whose environment holds our marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("NSL_TEST_MARKER") == marker and proc.status() != "zombie":
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def sleeping(marker: str) -> set[str]:
    found = set()
    for proc in marked(marker):
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmdline[:1] == ["sleep"]:
            found.add(cmdline[-1])
    return found


def start_runner(marker: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NSL_TEST_MARKER": marker}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(GRACE), f"tree={TREE}", f"stubborn={STUBBORN}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Like a shell job: a Ctrl-C goes to its group.
            start_new_session=True,
        )


@pytest.mark.parametrize("end", ["SIGKILL", "SIGTERM", "Ctrl-C", "a command exits"])
def test_nothing_the_runner_started_outlives_it(tmp_path: Path, end: str) -> None:
    marker = uuid.uuid4().hex
    log = tmp_path / "runner.log"
    runner = start_runner(marker, log)
    try:
        wait_until(lambda: sleeping(marker) == SLEEPS, "every process of the trees")
        assert " tree     | tree up" in log.read_text()
        if end == "SIGKILL":
            runner.kill()
            runner.wait(10)
            # Each supervisor stops its tree: SIGTERM, then SIGKILL after GRACE seconds.
            wait_until(lambda: not marked(marker), "no process left", timeout=GRACE + 10)
        else:
            expected = {"SIGTERM": 143, "Ctrl-C": 130, "a command exits": 128 + signal.SIGKILL}
            if end == "SIGTERM":
                runner.send_signal(signal.SIGTERM)
            elif end == "Ctrl-C":
                os.killpg(runner.pid, signal.SIGINT)
            else:
                (command,) = [p for p in marked(marker) if p.cmdline() == ["sleep", "1003"]]
                command.kill()
            assert runner.wait(GRACE + 30) == expected[end], log.read_text()
            # The runner returns once its supervisors have, each after its whole tree.
            assert marked(marker) == []
            output = log.read_text()
            assert "system   | tree stopped (rc=" in output
            assert "system   | stubborn stopped (rc=" in output
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for proc in marked(marker):
            proc.kill()


SERVER = """
import sys
from pathlib import Path
from neosl_devstack.redis import EmbeddedRedis

server = EmbeddedRedis(Path(sys.argv[1]), int(sys.argv[2]), durable=False)
server.start()
print(server.process.pid, flush=True)
sys.stdin.read()
"""


def test_a_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    port = free_port()
    owner = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "redis"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert owner.stdout is not None
        server = psutil.Process(int(owner.stdout.readline()))
        assert port_is_open("127.0.0.1", port)
        owner.kill()
        owner.wait(10)

        def gone() -> bool:
            try:
                return server.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_until(gone, "the server to stop")
        assert not port_is_open("127.0.0.1", port)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
