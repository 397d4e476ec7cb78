"""A child-process server with a data folder, a log file and a readiness probe."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class ServerError(RuntimeError):
    """A server did not start, or stopped unexpectedly."""


# Where free_port looks when it can: below the kernel's ephemeral range.
_LOWEST_PORT = 10_000


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now, below the kernel's ephemeral
    range when there is room there.

    A port from that range (what binding port 0 gives) can be taken, between now and the
    start of the server meant to listen on it, as the source port of any outgoing
    connection, such as the ones the other processes of a starting stack open by the dozen
    (seen: Flower's port taken so, "Address already in use").
    """
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral > _LOWEST_PORT + 1000:
        for _ in range(100):
            port = random.randrange(_LOWEST_PORT, first_ephemeral)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@functools.cache
def _first_ephemeral_port() -> int:
    """The first port of Linux's ephemeral range; 0 where it cannot be read."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def port_is_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value: int) -> None:
    """Linux's ``prctl(option, value)``.

    Raises:
        OSError: the kernel refused.
    """
    if _libc().prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the child gets ``sig`` when the thread that started it
    ends, however it ends (SIGKILL included); None where Linux's parent-death signal does not
    exist.

    The signal follows the *thread*: start long-lived children from one that outlives them
    (the main thread). It is not inherited by the child's own children.
    """
    if sys.platform != "linux":
        return None
    parent = os.getpid()
    # Loaded now, in the parent: the child, a fork of a process that may have threads, only
    # calls it.
    _libc()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:
            # The parent ended before the signal was armed: it will never come.
            raise ChildProcessError("the parent process has ended")

    return preexec


class ManagedServer:
    """Base class: subclasses say how to prepare the data folder, what to run and when it is ready.

    The process runs in its own session, so stopping it also stops anything it spawned,
    and a Ctrl-C aimed at the terminal's foreground group does not reach it before we
    stop it in order. On Linux it gets its stop signal when the thread that started it
    ends, even if the process is killed with SIGKILL, so that no server outlives its owner
    (``neosl-dev up``, a test run): start it from a thread that outlives it. The servers
    stop their own children when they stop (PostgreSQL its backends).
    """

    name = "server"

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- to override -------------------------------------------------------------
    def prepare(self) -> None:
        """Create the data folder and whatever the server needs before its first start."""
        self.datadir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def run_as_user(self) -> str | None:
        return None

    @property
    def url(self) -> str:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.datadir / f"{self.name}.log"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers.

        Raises:
            ServerError: the process exited, or did not answer within ``timeout`` seconds.
        """
        self.prepare()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.argv()),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.datadir,
            start_new_session=True,
            user=self.run_as_user(),
            preexec_fn=die_with_parent(self.stop_signal),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.process.returncode}; "
                    f"last log lines:\n{self.tail_log()}"
                )
            if self.is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.tail_log()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``), with its children."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            self._signal_group(proc.pid, self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.process = None

    stop_signal: signal.Signals = signal.SIGTERM

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def tail_log(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
