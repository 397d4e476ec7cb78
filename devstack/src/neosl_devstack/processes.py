"""The Procfile's processes for ``neosl-dev up``: prefixed logs, stopped together, and none
outliving ``neosl-dev up``, however it ends.

``Runner`` starts each process, prints its lines as honcho does (``12:00:00 api | …``) and
stops them all (SIGTERM, then SIGKILL what is left ``grace`` seconds later) on SIGINT,
SIGTERM or when one of them exits.

On Linux each process runs under a supervisor of its own (``python -m
neosl_devstack.processes``), because a parent-death signal reaches only the child it was
set in, not what that child starts (gunicorn's workers, Celery's pool, sandbox processes)
or reparents: the supervisor

- gets SIGTERM from the kernel when the thread of ``neosl-dev up`` that started it ends,
  even by SIGKILL (a parent-death signal); its command gets SIGKILL the same way, should
  the supervisor itself be killed;
- is a child subreaper: whatever its command starts stays in its tree, even a process whose
  parent died or that left its process group, so it can find and kill all of it;
- on SIGTERM (or SIGINT, SIGHUP) sends SIGTERM to its command's shell and what the shell
  started (the server or worker itself, which stops its own children: a Celery worker ends
  its running tasks, gunicorn its workers; a signal to the whole group would kill a
  worker's pool processes under it, mid-task), waits until every process of its tree has
  ended, and kills those left ``grace`` seconds later, or at once on a second signal;
- when its command exits on its own, kills what the command left behind;
- exits with its command's code.

It runs in a session of its own, so a Ctrl-C aimed at the terminal reaches only
``neosl-dev up``, which stops the processes in order.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from honcho.colour import get_colours
from honcho.printer import Message, Printer

from neosl_devstack.servers import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    die_with_parent,
    prctl,
)

# How long a process may take to stop after SIGTERM (gunicorn's --graceful-timeout).
STOP_GRACE = 10.0
# What the runner gives a supervisor beyond ``grace`` before it asks again, then kills it.
_MARGIN = 5.0
# Where a supervisor is needed and works: Linux's parent-death signal and subreapers.
SUPERVISED = sys.platform == "linux"
# The exit codes of a runner stopped by a signal, as a shell reports them.
_SIGNAL_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
_SYSTEM = "system"


@dataclass
class _Process:
    name: str
    command: str
    env: Mapping[str, str]
    cwd: Path | None
    colour: str | None
    popen: subprocess.Popen[bytes] | None = None
    output: IO[bytes] | None = None
    partial: bytearray = field(default_factory=bytearray)
    # Its end was seen and reported.
    ended: bool = False

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.returncode is None

    @property
    def to_watch(self) -> bool:
        return self.popen is not None and not self.ended


class Runner:
    """Runs commands (a Procfile's) until a signal or until one of them exits.

    Call ``run`` from the main thread: it handles SIGINT and SIGTERM while it runs, and the
    supervisors die with the thread that started them.
    """

    def __init__(self, output: TextIO = sys.stdout, grace: float = STOP_GRACE) -> None:
        self.grace = grace
        self._printer = Printer(output)
        self._printer.width = len(_SYSTEM)
        self._colours = get_colours()
        self._processes: list[_Process] = []
        self._returncode: int | None = None
        # Appended to by the signal handler, read by the loop: a handler must not print
        # (the loop may be in the middle of a write to the same stream).
        self._signals: list[int] = []
        self._signals_seen = 0
        self._stopping_since: float | None = None
        self._killed = False

    def add(self, name: str, command: str, env: Mapping[str, str], cwd: Path | None = None) -> None:
        """Add a process running ``command`` with ``/bin/sh``; it starts in ``run``.

        Raises:
            ValueError: a process of that name was added before.
        """
        if any(p.name == name for p in self._processes):
            raise ValueError(f"two processes named {name}")
        self._processes.append(_Process(name, command, env, cwd, next(self._colours)))
        self._printer.width = max(self._printer.width, len(name))

    def run(self) -> int:
        """Start every process; return once all have stopped: the code of the first to exit
        on its own, or 130 (SIGINT) or 143 (SIGTERM) when stopped by a signal."""
        wake, wake_write = socket.socketpair()
        wake.setblocking(False)
        wake_write.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(wake, selectors.EVENT_READ)
        # Each signal wakes the loop (SIGCHLD: a process ended).
        previous_fd = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
        }
        try:
            for process in self._processes:
                if self._signals:
                    break
                self._start(process, selector)
            while any(p.to_watch for p in self._processes):
                self._step(selector, wake)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            self._kill_all()
            for process in self._processes:
                if process.output is not None:
                    process.output.close()
            selector.close()
            wake.close()
            wake_write.close()
        return self._returncode or 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:
            self._signals.append(signum)

    def _start(self, process: _Process, selector: selectors.BaseSelector) -> None:
        popen = subprocess.Popen(
            supervised_argv(process.command, self.grace),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(process.env),
            cwd=process.cwd,
            start_new_session=True,
        )
        assert popen.stdout is not None
        process.popen = popen
        process.output = popen.stdout
        os.set_blocking(popen.stdout.fileno(), False)
        selector.register(popen.stdout, selectors.EVENT_READ, process)
        self._system(f"{process.name} started (pid={popen.pid})")

    def _step(self, selector: selectors.BaseSelector, wake: socket.socket) -> None:
        """Act on signals and ended processes, then wait for output, a signal or the end of
        the grace period."""
        while self._signals_seen < len(self._signals):
            signum = signal.Signals(self._signals[self._signals_seen])
            self._signals_seen += 1
            self._system(f"{signum.name} received")
            if self._returncode is None:
                self._returncode = _SIGNAL_CODES.get(signum, 128 + signum)
            if self._stopping_since is None:
                self._stop()
            else:
                # Asked again: no more waiting.
                self._kill_all()
        for process in self._processes:
            if process.to_watch and process.popen is not None and process.popen.poll() is not None:
                self._ended(process, selector)
        if not any(p.to_watch for p in self._processes):
            return
        timeout = None
        if self._stopping_since is not None and not self._killed:
            timeout = self._stopping_since + self.grace + _MARGIN - time.monotonic()
            if timeout <= 0:
                self._kill_all()
                return
        for key, _ in selector.select(timeout):
            if key.fileobj is wake:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(4096)
            else:
                self._read(key.data, selector)

    def _read(
        self, process: _Process, selector: selectors.BaseSelector, drain: bool = False
    ) -> None:
        """Print the process's complete lines (with ``drain``, all it has written), and
        its last one at the end of its output."""
        assert process.output is not None
        while True:
            try:
                chunk = os.read(process.output.fileno(), 65536)
            except BlockingIOError:
                return
            if not chunk:
                if process.partial:
                    self._print(process, bytes(process.partial))
                    process.partial.clear()
                selector.unregister(process.output)
                process.output.close()
                process.output = None
                return
            process.partial += chunk
            complete, newline, rest = bytes(process.partial).rpartition(b"\n")
            if newline:
                self._print(process, complete)
                process.partial[:] = rest
            if not drain:
                return

    def _ended(self, process: _Process, selector: selectors.BaseSelector) -> None:
        assert process.popen is not None
        process.ended = True
        if process.output is not None:
            self._read(process, selector, drain=True)
        code = process.popen.returncode
        self._system(f"{process.name} stopped (rc={code})")
        if self._returncode is None:
            self._returncode = code
        if self._stopping_since is None:
            self._stop()

    def _stop(self) -> None:
        self._stopping_since = time.monotonic()
        for process in self._processes:
            if process.running and process.popen is not None:
                self._system(f"sending SIGTERM to {process.name} (pid {process.popen.pid})")
                self._signal(process.popen.pid, signal.SIGTERM)

    def _kill_all(self) -> None:
        """Kill what still runs. A supervisor asked a second time kills its tree at once;
        one that does not answer, or a command without one, gets SIGKILL."""
        self._killed = True
        for process in self._processes:
            if not process.running or process.popen is None:
                continue
            pid = process.popen.pid
            if SUPERVISED:
                self._signal(pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(_MARGIN)
                    continue
            self._system(f"sending SIGKILL to {process.name} (pid {pid})")
            self._signal(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(_MARGIN)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        # A supervisor passes the signal on; without one, the command's process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if SUPERVISED:
                os.kill(pid, sig)
            else:
                os.killpg(pid, sig)

    def _print(self, process: _Process, data: bytes) -> None:
        self._printer.write(Message("line", data, dt.datetime.now(), process.name, process.colour))

    def _system(self, text: str) -> None:
        self._printer.write(Message("line", text, dt.datetime.now(), _SYSTEM, None))


# -- the supervisor ----------------------------------------------------------------------


def supervised_argv(command: str, grace: float = STOP_GRACE) -> list[str]:
    """The argv that runs the shell command ``command`` under a supervisor of its own (see
    the module's docstring), where there is one: started from this thread, it and all it
    starts end with this thread, however it ends. Start it in a session of its own; SIGTERM
    to the supervisor stops the command, SIGKILL ``grace`` seconds later what is left."""
    argv = ["/bin/sh", "-c", command]
    if not SUPERVISED:
        return argv
    return [
        sys.executable,
        "-m",
        "neosl_devstack.processes",
        "--parent",
        str(os.getpid()),
        "--grace",
        str(grace),
        "--",
        *argv,
    ]


def supervise(argv: Sequence[str], parent: int, grace: float) -> int:
    """Run ``argv`` as described in the module's docstring; return its exit code (128 + the
    signal's number when a signal ended it)."""
    handled = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
    # Signals wait in the mask until the loop takes them: none is lost between two waits.
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        # The parent ended before the signal was armed.
        return 1
    arm = die_with_parent(signal.SIGKILL)
    assert arm is not None

    def child_setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        arm()

    # Its own process group, which the stop signal goes to, like a shell job's.
    child = subprocess.Popen(argv, process_group=0, preexec_fn=child_setup)
    # Every process of our tree reaped so far: pid → exit code.
    ended: dict[int, int] = {}
    deadline: float | None = None
    # Until the command ends or, once asked to stop, until all of its tree has ended (the
    # shell running a command ends at SIGTERM, the command may take a while).
    while child.pid not in ended or (deadline is not None and _reap(ended)):
        info: signal.struct_siginfo | None
        if deadline is None:
            info = signal.sigwaitinfo(handled)
        else:
            info = signal.sigtimedwait(handled, max(0.0, deadline - time.monotonic()))
        if info is None:
            _say(f"still running {grace:g} s after SIGTERM: killed")
            break
        if info.si_signo == signal.SIGCHLD:
            _reap(ended)
        elif deadline is None:
            # The shell and what it started directly (the server or worker: a shell may not
            # replace itself with it); not their children, which they stop themselves.
            for pid in [child.pid, *_children_of(child.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
        else:
            # Asked again: no more waiting.
            break
    _kill_tree(ended)
    code = ended.get(child.pid, -signal.SIGKILL)
    # Popen did not reap it: say so, or it would wait for a pid that may be reused.
    child.returncode = code
    return code if code >= 0 else 128 - code


def _reap(ended: dict[int, int]) -> bool:
    """Reap every ended child (ours, or orphans of our tree) into ``ended``; whether any
    child is left."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        ended[pid] = os.waitstatus_to_exitcode(status)


def _kill_tree(ended: dict[int, int], timeout: float = 10.0) -> None:
    """SIGKILL every process of our tree, until none is left (one forked meanwhile is found
    on the next pass; orphans come back to us); those reaped go into ``ended``.

    Not by process group: once its members are reaped, its number may be reused.
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while found := _descendants(me):
        if time.monotonic() > deadline:
            _say(f"processes {found} would not die")
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Until one of our children ends (never long after SIGKILL), or another pass.
        signal.sigtimedwait({signal.SIGCHLD}, 0.1)
        _reap(ended)
    _reap(ended)


def _children_of(parent: int) -> list[int]:
    """The living (not zombie) processes whose parent is ``parent``."""
    return _tree_map().get(parent, [])


def _tree_map() -> dict[int, list[int]]:
    """Each living (not zombie) process's children, read from ``/proc``."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(name))
    return children


def _descendants(root: int) -> list[int]:
    """The living (not zombie) processes below ``root``, read from ``/proc``."""
    children = _tree_map()
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def _say(text: str) -> None:
    # Our output is the runner's pipe, gone if the runner is.
    with contextlib.suppress(OSError):
        print(f"neosl-dev: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m neosl_devstack.processes",
        description="run a command so that it and all it starts end with our parent",
    )
    parser.add_argument("--parent", type=int, required=True, help="the expected parent pid")
    parser.add_argument("--grace", type=float, default=STOP_GRACE)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    return supervise(args.command, args.parent, args.grace)


if __name__ == "__main__":
    sys.exit(main())
