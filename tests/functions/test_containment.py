"""The operating system's containment of sandbox processes, shown from inside one.

A probe is a sandbox process started exactly as the pool starts one (``pool.spec``: the
same command, environment, directory and user) with ``--probe``: it takes every step of
``neosl.functions.sandbox.containment``, then, instead of serving runs, reports what the
system still lets it do. The tests run as root, as CI does here, so every step is taken,
the switch to the sandbox user included. With ``--skip`` a probe leaves steps out, to show
what the others hold alone: an executor that is not root gets no user switch, and no
network namespace where user namespaces are not allowed.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import make_url

from neosl.config import Settings
from neosl.functions.sandbox import Limits, RunRequest, SandboxPool, containment, protocol
from neosl.functions.sandbox.types import MAX_MEMORY_MB

ROOT = os.geteuid() == 0
NOBODY = containment.resolve_user(containment.DEFAULT_USER)
ALL_HELD = dict.fromkeys(containment.STEPS, containment.HELD)
# What a sandbox process's environment may hold: what Python needs, nothing of the service.
HARMLESS = {
    *("PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"),
    *("LANG", "LC_ALL", "LC_CTYPE", "TZ"),
}
CANARY = "canary-4f1c9a"
MB = 1024 * 1024
# Where every step can be taken: as root, as CI runs the tests here.
needs_root = pytest.mark.skipif(not ROOT, reason="every step is taken only as root")


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(max_processes=2) as pool:
        yield pool


@pytest.fixture
def servers(settings: Settings) -> list[tuple[str, int]]:
    """The test PostgreSQL's and Redis's addresses, which this process can connect to."""
    database = make_url(settings.database_url)
    redis = urlsplit(settings.redis_url)
    addresses = [
        (database.host or "127.0.0.1", database.port or 5432),
        (redis.hostname or "127.0.0.1", redis.port or 6379),
    ]
    for address in addresses:
        socket.create_connection(address, timeout=5).close()
    return addresses


def probe(pool: SandboxPool, *args: str) -> dict[str, Any]:
    """What a sandbox process started as ``pool`` starts one reports with ``--probe``."""
    spec = pool.spec
    done = subprocess.run(
        [*spec.args, "--probe", *args],
        env=spec.env,
        cwd=spec.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def connect_args(servers: list[tuple[str, int]]) -> list[str]:
    return [arg for host, port in servers for arg in ("--connect", f"{host}:{port}")]


def refused(outcome: str, why: str = "") -> bool:
    return outcome.startswith("refused: ") and why in outcome


def dumpable() -> int:
    result: int = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    return result


# -- every step


@needs_root
def test_a_sandbox_process_reaches_nothing_of_the_executor(
    servers: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The executor's secrets are in its environment.
    for name in ("NSL_SECRETS_KEY", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.setenv(name, CANARY)
    with SandboxPool(max_processes=1) as executors:
        # Starting, the pool made this process not dumpable.
        assert dumpable() == 0
        report = probe(executors, *connect_args(servers))

    assert report["containment"] == ALL_HELD
    # No variable of the executor's: only what Python needs.
    assert set(report["environment"]) <= HARMLESS, report["environment"]
    assert CANARY not in json.dumps(report["environment"])
    # Nor its environment and memory through /proc.
    assert refused(report["read_parent_environ"], "Permission denied")
    assert refused(report["read_parent_memory"], "Permission denied")
    # It signals nothing but itself (kill(-1) would reach every process of its user).
    assert refused(report["signal_parent"], "Operation not permitted")
    assert report["signal_itself"] == "allowed"
    # No network: no socket at all, and a namespace whose only interface is loopback.
    for address in servers:
        assert refused(report["connect"][f"{address[0]}:{address[1]}"]), report["connect"]
    for family in ("inet", "inet6", "unix"):
        assert refused(report[f"socket_{family}"], "Permission denied")
    assert report["interfaces"] == ["lo"]
    # No file written, in its directory or anywhere else.
    assert report["cwd"] == "/"
    assert refused(report["create_file_in_cwd"])
    assert refused(report["create_file_in_tmp"])
    # No new process or thread, and no memory past the largest heap plus headroom.
    assert refused(report["fork"])
    assert refused(report["thread"])
    assert report["allocate_largest_heap"] == "allowed"
    assert refused(report["allocate_past_limit"], "MemoryError")
    limits = report["rlimits"]
    assert limits["RLIMIT_FSIZE"] == [0, 0]
    assert limits["RLIMIT_CORE"] == [0, 0]
    assert limits["RLIMIT_NOFILE"] == [containment.MAX_FILES] * 2
    assert limits["RLIMIT_NPROC"] == [0, 0]
    headroom = (MAX_MEMORY_MB + containment.ADDRESS_SPACE_HEADROOM_MB) * MB
    assert headroom < limits["RLIMIT_AS"][0] < headroom + 256 * MB
    # Not dumpable itself, with no way to gain privileges, and filtered.
    assert (report["dumpable"], report["no_new_privs"], report["seccomp"]) == (0, "1", "2")
    # As the sandbox user, with no group and no capability of root's.
    assert (report["uid"], report["euid"], report["gid"]) == (NOBODY.uid, NOBODY.uid, NOBODY.gid)
    assert report["groups"] == []
    assert report["capabilities"] == "0" * 16


@needs_root
def test_the_pool_runs_functions_in_contained_processes(pool: SandboxPool) -> None:
    outcome = pool.run(
        RunRequest("function main(input) { return input * 2 }", 21, limits=Limits(5))
    )
    assert (outcome.status, outcome.result) == ("succeeded", 42), outcome
    assert pool.compile("function main() {}") is None
    assert pool.containment == ALL_HELD
    # And seen from outside.
    for pid in pool.pids:
        with open(f"/proc/{pid}/status") as file:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in file if ":\t" in line)
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")
        assert status["Uid"].split() == [str(NOBODY.uid)] * 4
        assert status["Groups"].strip() == ""
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")


# -- each step alone


def test_without_a_network_namespace_the_filter_still_refuses_sockets(
    pool: SandboxPool, servers: list[tuple[str, int]]
) -> None:
    # What an executor that is not root gets where user namespaces are not allowed.
    report = probe(pool, "--skip", "netns", "--skip", "user", *connect_args(servers))
    assert report["containment"]["seccomp"] == containment.HELD
    assert report["interfaces"] != ["lo"]
    assert all(refused(outcome, "Permission denied") for outcome in report["connect"].values())
    assert refused(report["socket_inet"], "Permission denied")
    # Nor can it create a file where its user may write (here: root, anywhere), nor signal
    # a process of its user.
    assert refused(report["create_file_in_cwd"], "Permission denied")
    assert refused(report["create_file_in_tmp"], "Permission denied")
    assert refused(report["signal_parent"], "Operation not permitted")


@needs_root
def test_without_the_filter_the_network_namespace_still_has_nothing_to_reach(
    pool: SandboxPool, servers: list[tuple[str, int]]
) -> None:
    report = probe(pool, "--skip", "seccomp", "--skip", "user", *connect_args(servers))
    assert report["containment"]["netns"] == containment.HELD
    assert report["socket_inet"] == "allowed"
    assert all(refused(outcome, "unreachable") for outcome in report["connect"].values())
    # A file may be created, but not written to.
    assert refused(report["create_file_in_tmp"], "File too large")


@needs_root
def test_the_sandbox_user_alone_cannot_read_the_executor_or_fork(pool: SandboxPool) -> None:
    report = probe(pool, "--skip", "seccomp", "--skip", "netns")
    assert report["containment"]["user"] == containment.HELD
    assert report["uid"] == NOBODY.uid
    assert refused(report["read_parent_environ"], "Permission denied")
    assert refused(report["create_file_in_cwd"], "Permission denied")
    assert refused(report["fork"], "Resource temporarily unavailable")


# An executor that is not root: a process of its own user (a sandbox process that could not
# switch users) reads its environment, until the executor is made not dumpable.
SAME_USER = r"""
import ctypes, os, sys
from neosl.functions.sandbox import containment
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
# Switching users made it not dumpable: as it starts, a process of this user is.
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)

def read_parent():
    pid = os.fork()
    if pid == 0:
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as environ:
                os._exit(0 if b"canary-4f1c9a" in environ.read() else 2)
        except PermissionError:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

before = read_parent()
held = containment.protect_host()
print(before, held, read_parent())
"""


@needs_root
def test_a_process_of_the_same_user_cannot_read_an_executor_that_protected_itself() -> None:
    env = {**os.environ, "NSL_SECRETS_KEY": CANARY}
    done = subprocess.run(
        [sys.executable, "-c", SAME_USER], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", containment.HELD, "1"]


# -- what the pool makes of the reports


# A real sandbox process whose ready message says its network namespace was refused.
REFUSED_NETNS = r"""
import subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-m", "neosl.functions.sandbox.child", *sys.argv[1:]],
    stdout=subprocess.PIPE,
)
out = sys.stdout.buffer
out.write(child.stdout.readline().replace(b'"netns":"held"', b'"netns":"refused here"'))
out.flush()
while data := child.stdout.read1(1 << 16):
    out.write(data)
    out.flush()
"""


@needs_root
def test_a_step_that_did_not_hold_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="neosl.functions.sandbox.pool")
    with SandboxPool(max_processes=2, command=(sys.executable, "-c", REFUSED_NETNS)) as two:
        two.warm(2)
        assert two.size == 2
        outcome = two.run(RunRequest("function main() { return 1 }", limits=Limits(5)))
        assert outcome.result == 1
        assert two.containment == {**ALL_HELD, "netns": "refused here"}
    warnings = [r.getMessage() for r in caplog.records if "not contained by" in r.getMessage()]
    assert warnings == [
        "sandbox processes are not contained by netns: refused here "
        "(still held: no_new_privs, seccomp, user, rlimits, dumpable)"
    ]


def test_the_user_must_exist_and_not_be_root() -> None:
    assert containment.resolve_user("65534") == containment.SandboxUser(65534, 65534)
    assert containment.resolve_user("1234:5678") == containment.SandboxUser(1234, 5678)
    for wrong in ("root", "0", "1000:0", "no-such-user-here", "a:b"):
        with pytest.raises(ValueError, match="sandbox user"):
            SandboxPool(max_processes=1, user=wrong)


def test_the_host_checks_the_containment_report() -> None:
    def ready(report: object) -> bytes:
        return json.dumps({"op": "ready", "pid": 1, "containment": report}).encode()

    assert protocol.parse_child_message(ready(ALL_HELD)) == protocol.Ready(1, ALL_HELD)
    wrong: list[object] = [
        None,
        [],
        {},
        {k: v for k, v in ALL_HELD.items() if k != "seccomp"},
        {**ALL_HELD, "extra": "held"},
        {**ALL_HELD, "netns": True},
        {**ALL_HELD, "netns": ""},
        {**ALL_HELD, "netns": "x" * (containment.MAX_REASON_CHARS + 1)},
        {**ALL_HELD, "netns": "a\nforged log line"},
        {**ALL_HELD, "netns": "\u202eheld"},
    ]
    for report in wrong:
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_child_message(ready(report))
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_child_message(b'{"op":"ready","pid":1}')
