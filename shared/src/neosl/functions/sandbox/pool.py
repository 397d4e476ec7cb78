"""A pool of warm sandbox processes that run functions' JavaScript: ``SandboxPool``.

Each sandbox is a child process (``python -m neosl.functions.sandbox.child``, started with
``subprocess``: never a fork of this process) that runs one execution at a time, each in a
fresh QuickJS context, and is reused for the next. This process never imports ``quickjs``.

Limits, from the inside out:
* the child gives the engine the time that remains as its CPU time limit for every slice
  of JavaScript, and a memory limit and a stack limit per context: a CPU loop, a memory bomb
  or deep recursion ends the execution and leaves the child reusable;
* the pool keeps the wall-clock deadline: when a child has not answered by the deadline plus
  ``kill_grace_seconds`` (a long native operation, a starved CPU) it is SIGKILLed and
  replaced; while the function waits for fetches, the pool tells the child to stop at the
  deadline;
* the child caps its address space (``RLIMIT_AS``) in case memory escapes the engine's
  accounting, and an engine crash takes down only that child;
* the operating system contains each child, in case an engine bug hands it to tenant code
  (``containment``): it starts with a clean environment in ``/``, and before it reads any
  tenant code it takes a network namespace of its own, a seccomp filter (no socket, no file
  written), the sandbox user (when root), resource limits (no file grows, no new process)
  and becomes not dumpable; this process becomes not dumpable too, so that no child can
  read its environment or memory. A step the system refuses is logged once, and skipped;
* this process trusts nothing a child says (tenant code runs there, and an engine bug could
  give it the child): it reads at most ``protocol.MAX_CHILD_MESSAGE_BYTES`` for one message
  and checks every message through (``protocol.parse_child_message``) before acting on it.
  A child that breaks the protocol in any way is killed and replaced, and its run fails.

Whatever ends a run, its ``duration_ms`` is the time it really took (at least 1 ms, at most
its timeout): what it is charged for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import select
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from neosl.closing import Closing
from neosl.functions.fetching import (
    MAX_REQUESTS_PER_EXECUTION,
    Fetcher,
    FetchRequest,
    FetchResponse,
)
from neosl.functions.sandbox import protocol
from neosl.functions.sandbox.containment import DEFAULT_USER, HELD, protect_host, resolve_user
from neosl.functions.sandbox.types import (
    ERROR_CUT,
    MAX_MEMORY_MB,
    Action,
    CompileError,
    LogLine,
    Outcome,
    RunRequest,
    cut_error,
)

log = logging.getLogger(__name__)

# How long past its deadline a silent child may take before it is killed. Within it the
# engine's own time limit normally ends the execution; it also covers the child's final
# drain of the console and the message back.
KILL_GRACE_SECONDS = 0.15
START_TIMEOUT_SECONDS = 30.0
COMPILE_TIMEOUT_SECONDS = 10.0
REDACTED = "***"
MB = 1024 * 1024

CHILD_COMMAND = (sys.executable, "-m", "neosl.functions.sandbox.child")
# Where the children start: a directory that neither the sandbox user nor any user but root
# can write to (and their seccomp filter refuses to create files anyway).
CHILD_DIRECTORY = "/"
# The children get only these of our environment variables, which Python and the engine
# need: an engine exploit must not find the service's keys and URLs there.
_ENV_KEPT = ("PATH", "PYTHONPATH", "PYTHONHOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# Where our package is: the children import it from there, whatever their directory.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


@dataclass(frozen=True)
class ChildSpec:
    """How a sandbox process is started: ``subprocess.Popen(args, env=env, cwd=cwd)``, with
    pipes for its stdin and stdout (no ``preexec_fn``: this process has threads)."""

    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str


def child_spec(command: Iterable[str] = CHILD_COMMAND, user: str = DEFAULT_USER) -> ChildSpec:
    """How the pool starts a sandbox process running ``command``, which switches to ``user``
    when started as root (see ``containment.resolve_user``).

    Raises:
        ValueError: no such user, or root.
    """
    env = {k: v for k in _ENV_KEPT if (v := os.environ.get(k)) is not None}
    # Unless it is installed: ahead of the standard library, site-packages could shadow it.
    if _PACKAGE_ROOT not in {os.path.realpath(p) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    # It could not write them anyway.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    args = (*command, "--user", str(resolve_user(user)))
    return ChildSpec(args, env, CHILD_DIRECTORY)


# Performs a function's neo.call: (contract, method, args as parsed JSON) → the JSON text of
# the decoded result; raises NeoCallError with the message the function sees.
NeoCaller = Callable[[str, str, Any], str]


class NeoCallError(Exception):
    """A neo.call that failed; its message is what the function's promise rejects with."""


class SandboxError(RuntimeError):
    """The pool cannot run anything: it is closed, or sandbox processes will not start."""


class _Gone(Exception):
    """The child died, or said something the protocol does not allow (``_Violation``)."""


class _Violation(_Gone):
    """The child said something the protocol does not allow: it is killed."""


class _Stale(Exception):
    """The child was dead before it took the work: try another one."""


class _Child:
    """One sandbox process and our end of its pipes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.pid = process.pid
        # What its ready message said of its containment: step → "held", or why not.
        self.containment: dict[str, str] = {}
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._write_fd = process.stdin.fileno()
        self._read_fd = process.stdout.fileno()
        # Writes never block past a deadline; reads wait in poll(), which has no fd limit.
        os.set_blocking(self._write_fd, False)
        self._readable = select.poll()
        self._readable.register(self._read_fd, select.POLLIN)
        self._writable = select.poll()
        self._writable.register(self._write_fd, select.POLLOUT)
        self._buffer = bytearray()
        # How much of the buffer is known to hold no line end.
        self._scanned = 0

    @classmethod
    def start(cls, spec: ChildSpec) -> _Child:
        """Raises:
        SandboxError: the process did not start or did not say it was ready.
        """
        try:
            process = subprocess.Popen(
                spec.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=spec.env,
                cwd=spec.cwd,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start a sandbox process: {exc}") from exc
        child = cls(process)
        try:
            hello = child.receive(time.monotonic() + START_TIMEOUT_SECONDS)
        except _Gone as exc:
            child.kill()
            raise SandboxError(f"a sandbox process failed to start: {exc}") from exc
        if not isinstance(hello, protocol.Ready):
            child.kill()
            raise SandboxError("a sandbox process did not get ready in time")
        child.containment = hello.containment
        return child

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict[str, Any] | bytes, until: float) -> None:
        """Raises:
        _Gone: the child is dead, or did not read its input by ``until``.
        """
        data = memoryview(message if isinstance(message, bytes) else protocol.encode(message))
        while data:
            try:
                data = data[os.write(self._write_fd, data) :]
            except BlockingIOError:
                remaining = until - time.monotonic()
                if remaining <= 0 or not self._writable.poll(remaining * 1000):
                    raise _Gone("it does not read its input") from None
            except OSError as exc:
                raise _Gone(self.exit_description()) from exc

    def receive(self, until: float) -> protocol.ChildMessage | None:
        """The child's next message, checked, or None if it sent none by ``until``.

        Raises:
            _Violation: the child sent anything the protocol does not allow (reading no
                more than ``protocol.MAX_CHILD_MESSAGE_BYTES`` of a message that is longer).
            _Gone: the child closed its output (it died).
        """
        limit = protocol.MAX_CHILD_MESSAGE_BYTES
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                try:
                    return protocol.parse_child_message(line)
                except protocol.ProtocolError as exc:
                    raise _Violation(str(exc)) from None
            self._scanned = len(self._buffer)
            # The line end may be the byte after the longest message.
            if len(self._buffer) > limit:
                raise _Violation(f"a message longer than {limit // MB} MB")
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            if not self._readable.poll(remaining * 1000):
                continue
            try:
                data = os.read(self._read_fd, min(1 << 20, limit + 1 - len(self._buffer)))
            except OSError as exc:
                raise _Gone(str(exc)) from exc
            if not data:
                raise _Gone(self.exit_description())
            self._buffer += data

    def exit_description(self) -> str:
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "it stopped talking"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def signal_kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def kill(self) -> None:
        self.signal_kill()
        self.process.wait()
        self._close_pipes()

    def stop(self) -> None:
        """Ask the child to exit (end of its input), kill it if it does not."""
        self._close_pipes()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class _Redactor:
    """Replaces every granted secret value with ``***``, longest values first."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        secrets = ctx.get("secrets")
        values = (
            sorted({v for v in secrets.values() if isinstance(v, str) and v}, key=len, reverse=True)
            if isinstance(secrets, dict)
            else []
        )
        self._values = values
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def cut(self, text: str) -> str:
        """``text``, which was cut at its end, redacted: a secret the cut split leaves its
        beginning at the very end, which is dropped too."""
        text = self(text)
        longest = 0
        for value in self._values:
            for size in range(min(len(value) - 1, len(text)), longest, -1):
                if text.endswith(value[:size]):
                    longest = size
                    break
        return text[: len(text) - longest]

    def error(self, text: str) -> str:
        """An execution's error, redacted and within MAX_ERROR_BYTES."""
        if text.endswith(ERROR_CUT):
            text = self.cut(text[: -len(ERROR_CUT)]) + ERROR_CUT
        else:
            text = self(text)
        return cut_error(text)


def _how(exc: _Gone) -> str:
    """How a child that is being discarded went wrong, for the log."""
    return "broke the protocol" if isinstance(exc, _Violation) else "crashed"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _perform(fetcher: Fetcher, request: FetchRequest) -> FetchResponse:
    try:
        return fetcher(request)
    except Exception:
        # A fetcher must not raise; if one does, the function sees a failed fetch.
        # The host only: a URL may carry a tenant's secret in its path or query.
        log.exception("the fetcher raised for %s %s", request.method, _host(request.url))
        return FetchResponse(error="fetch failed")


def _call_neo(caller: NeoCaller, contract: str, method: str, args: Any) -> FetchResponse:
    """A neo.call's answer, carried like a fetch's: ``body`` the JSON text of the result."""
    try:
        return FetchResponse(status=200, body=caller(contract, method, args))
    except NeoCallError as exc:
        return FetchResponse(error=str(exc) or "neo.call failed")
    except Exception:
        log.exception("the neo caller raised for %s.%s", contract, method)
        return FetchResponse(error="neo.call failed")


def _answer(request_id: int, request: FetchRequest, response: FetchResponse) -> dict[str, Any]:
    if response.error is not None:
        return {"id": request_id, "error": response.error or "fetch failed"}
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    return {
        "id": request_id,
        "status": response.status,
        "statusText": phrase,
        "headers": dict(response.headers),
        "body": response.body,
        "url": response.url or request.url,
    }


# Room in a ``resolved`` message for what is not an answer.
_RESOLVED_OVERHEAD = 64


class _Fetches:
    """The requests of one execution, performed concurrently on the pool's fetch threads.

    Answers wait here encoded, and go to the child in messages of at most
    ``protocol.MAX_MESSAGE_BYTES`` (those that do not fit go with the next one)."""

    def __init__(self, pool: SandboxPool, neo_calls: int) -> None:
        self._pool = pool
        self._ready: list[bytes] = []
        self._running: dict[Future[FetchResponse], tuple[int, FetchRequest | None]] = {}
        self.count = 0
        self.neo_calls = 0
        self._neo_allowed = neo_calls

    def _add(self, answer: dict[str, Any]) -> None:
        data = protocol.encode_json(answer)
        if len(data) > protocol.MAX_MESSAGE_BYTES - _RESOLVED_OVERHEAD:
            # Only a fetcher that does not keep to MAX_BODY_BYTES gets here.
            data = protocol.encode_json({"id": answer["id"], "error": "fetch: response too large"})
        self._ready.append(data)

    def _neo(self, item: protocol.NeoCallItem) -> None:
        caller = self._pool.neo_caller
        if caller is None or self._neo_allowed <= 0:
            self._add({"id": item.id, "error": "neo.call is not available here"})
        elif self.neo_calls >= self._neo_allowed:
            error = f"neo.call: at most {self._neo_allowed} calls per execution"
            self._add({"id": item.id, "error": error})
        else:
            self.neo_calls += 1
            future = self._pool.fetch_threads().submit(
                _call_neo, caller, item.contract, item.method, item.args
            )
            self._running[future] = (item.id, None)

    def start(self, requests: list[protocol.FetchItem | protocol.NeoCallItem]) -> None:
        for item in requests:
            if isinstance(item, protocol.NeoCallItem):
                self._neo(item)
                continue
            request = FetchRequest(
                url=item.url, method=item.method, headers=item.headers, body=item.body
            )
            fetcher = self._pool.fetcher
            if fetcher is None:
                self._add({"id": item.id, "error": "fetch is not available here"})
            elif self.count >= MAX_REQUESTS_PER_EXECUTION:
                error = f"fetch: at most {MAX_REQUESTS_PER_EXECUTION} requests per execution"
                self._add({"id": item.id, "error": error})
            else:
                self.count += 1
                future = self._pool.fetch_threads().submit(_perform, fetcher, request)
                self._running[future] = (item.id, request)

    def answers(self, deadline: float, block: bool = True) -> list[bytes] | None:
        """Answers for the child (encoded): those ready now, else (``block``) the first to
        finish before the deadline; as many as fit in one message. None when the deadline
        came first (or, blocking, there is nothing to wait for)."""
        if block and not self._ready:
            if not self._running:
                return None
            wait(self._running, max(deadline - time.monotonic(), 0.0), FIRST_COMPLETED)
        for future in [f for f in self._running if f.done()]:
            request_id, request = self._running.pop(future)
            response = future.result()
            if request is not None:
                self._add(_answer(request_id, request, response))
            elif response.error is not None:
                self._add({"id": request_id, "error": response.error})
            else:
                self._add({"id": request_id, "value": response.body})
        if not self._ready:
            return [] if not block and time.monotonic() < deadline else None
        size = _RESOLVED_OVERHEAD
        count = 0
        for data in self._ready:
            size += len(data) + 1
            if count and size > protocol.MAX_MESSAGE_BYTES:
                break
            count += 1
        ready, self._ready = self._ready[:count], self._ready[count:]
        return ready


# How the child's note that it cut the console output begins.
_LOGS_CUT = "log output truncated"
# A \u escape of a UTF-16 surrogate: JSON.stringify writes lone ones that way.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _scrub(value: Any) -> Any:
    """``value`` with lone surrogates in its strings replaced by "?": JSON allows them, but
    they are not Unicode, and nothing downstream (UTF-8, PostgreSQL) can store them."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _timestamp(ms: Any) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(ms) / 1000, tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return dt.datetime.now(dt.UTC)


def _outcome(done: protocol.Done, redact: _Redactor, duration_ms: int, fetches: int) -> Outcome:
    result = None
    if done.status == "succeeded":
        result = done.result
        if done.result_text is not None and _SURROGATE_ESCAPE.search(done.result_text):
            result = _scrub(result)
    # The line before the child's note that it cut the output may end in part of a secret.
    cut = len(done.logs) - 2 if done.logs and done.logs[-1][2].startswith(_LOGS_CUT) else -1
    logs = [
        LogLine(level, redact.cut(message) if i == cut else redact(message), _timestamp(ms))
        for i, (level, ms, message) in enumerate(done.logs)
    ]
    actions = (
        [Action(a.contract, a.method, a.args) for a in done.actions]
        if done.status == "succeeded"
        else []
    )
    return Outcome(
        status=done.status,
        result=result,
        error=None if done.error is None else redact.error(done.error),
        logs=logs,
        duration_ms=duration_ms,
        fetches=fetches,
        actions=actions,
    )


class SandboxPool(Closing):
    """Runs jobs in warm sandbox processes, at most ``max_processes`` at once.

    Thread-safe: ``run`` and ``compile`` may be called from many threads; each call takes an
    idle process, starts one if none is idle and fewer than ``max_processes`` live, or waits.
    At most ``max_starting`` processes start at once (by default one per CPU): starting one
    is mostly CPU (an interpreter and its imports), so a burst that started dozens at once
    would have none ready until nearly all were, while a few at a time are ready one after
    the other and take work at once.

    ``fetcher`` performs the functions' requests (on up to ``fetch_threads`` threads, by
    default enough for every process to have all its requests in flight); without one,
    ``fetch`` rejects with "fetch is not available here". ``neo_caller`` performs
    ``neo.call`` on the same threads (without one, or with ``Limits.neo_calls`` 0, it rejects
    with "neo.call is not available here").

    Started as root, the processes run as ``user`` (``nobody`` by default; a name, ``UID`` or
    ``UID:GID``). Creating a pool makes this process not dumpable (``containment``).

    Raises:
        ValueError: ``max_processes`` below 1; ``user`` does not exist, or is root.
    """

    def __init__(
        self,
        max_processes: int = 64,
        fetcher: Fetcher | None = None,
        *,
        neo_caller: NeoCaller | None = None,
        fetch_threads: int | None = None,
        max_starting: int | None = None,
        kill_grace_seconds: float = KILL_GRACE_SECONDS,
        command: Iterable[str] = CHILD_COMMAND,
        user: str = DEFAULT_USER,
    ) -> None:
        if max_processes < 1:
            raise ValueError("max_processes must be at least 1")
        # How its processes are started (the tests start probes exactly so).
        self.spec = child_spec(command, user)
        self.max_processes = max_processes
        self.max_starting = max_starting or max(os.cpu_count() or 1, 2)
        self.fetcher = fetcher
        self.neo_caller = neo_caller
        self.kill_grace_seconds = kill_grace_seconds
        self._fetch_thread_count = fetch_threads or max_processes * MAX_REQUESTS_PER_EXECUTION
        self._fetch_threads: ThreadPoolExecutor | None = None
        self._cond = threading.Condition()
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()
        self._starting = 0
        self._restarts = 0
        self._closed = False
        self._containment: dict[str, str] = {}
        # Each step that did not hold, and why, is logged once.
        self._warned: set[tuple[str, str]] = set()
        host = protect_host()
        if host != HELD:
            log.warning(
                "this process stays dumpable (%s): a sandbox process of the same user could "
                "read its environment and memory",
                host,
            )

    # -- stats, for metrics and operators

    @property
    def size(self) -> int:
        """Live sandbox processes (idle or busy)."""
        with self._cond:
            return len(self._children)

    @property
    def restarts(self) -> int:
        """Sandbox processes killed (past a deadline) or found dead (crashed) so far."""
        with self._cond:
            return self._restarts

    @property
    def containment(self) -> dict[str, str]:
        """What the last sandbox process started reported of its containment: for each of
        ``containment.STEPS``, ``"held"`` or why not (empty before the first one)."""
        with self._cond:
            return dict(self._containment)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live sandbox processes."""
        with self._cond:
            return sorted(child.pid for child in self._children)

    # -- work

    def warm(self, count: int = 1) -> None:
        """Start sandbox processes until ``count`` are live (at most ``max_processes``).

        Raises:
            SandboxError: the pool is closed, or a process did not start.
        """
        started: list[_Child] = []
        try:
            # Holding every process taken, idle ones included, until enough are live.
            while self.size < min(count, self.max_processes):
                started.append(self._acquire())
        finally:
            for child in started:
                self._release(child)

    def prestart(self, count: int) -> int:
        """Start processes until ``count`` are live (or starting), each one idle, and so
        taking work, as soon as it is ready; returns how many this call started.

        Unlike ``warm`` it holds no process: runs go on meanwhile. It shares the start slots
        (``max_starting``) with runs that need a new process; several threads may call it.
        A process that will not start ends it (logged); so does closing the pool.
        """
        started = 0
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return started
                    if len(self._children) + self._starting >= min(count, self.max_processes):
                        return started
                    if self._starting < self.max_starting:
                        self._starting += 1
                        break
                    self._cond.wait()
            try:
                child = self._start_child()
            except SandboxError as exc:
                if not self._closed:
                    log.warning("prestarting sandbox processes stopped: %s", exc)
                return started
            started += 1
            self._release(child)

    def run(self, job: RunRequest) -> Outcome:
        """Run ``job`` and tell how it ended; blocks until then (at most its timeout plus
        ``kill_grace_seconds``, plus waiting for a free process).

        Raises:
            SandboxError: the pool is closed, or sandbox processes will not start.
            TypeError: ``job.input`` or ``job.ctx`` is not JSON-serialisable.
        """
        timeout = max(float(job.limits.timeout_seconds), 0.001)
        message = protocol.encode(
            {
                "op": protocol.RUN,
                "source": job.source,
                "input": json.dumps(job.input),
                "ctx": json.dumps(job.ctx),
                "timeout": timeout,
                "memory_mb": min(max(int(job.limits.memory_mb), 1), MAX_MEMORY_MB),
                "neo_calls": max(int(job.limits.neo_calls), 0),
                "neo_actions": max(int(job.limits.neo_actions), 0),
            }
        )
        if len(message) > protocol.MAX_MESSAGE_BYTES:
            limit = protocol.MAX_MESSAGE_BYTES // (1024 * 1024)
            return Outcome("failed", error=f"the source, input and ctx exceed {limit} MB")
        redact = _Redactor(job.ctx)
        for _attempt in range(3):
            child = self._acquire()
            try:
                return self._run(child, message, timeout, redact, job.limits.neo_calls)
            except _Stale:
                continue
            except BaseException:
                self._discard(child, "the pool failed while it ran a job")
                raise
        raise SandboxError("sandbox processes keep dying before they take work")

    def _run(
        self, child: _Child, message: bytes, timeout: float, redact: _Redactor, neo_calls: int
    ) -> Outcome:
        started = time.monotonic()
        deadline = started + timeout
        hard_deadline = deadline + self.kill_grace_seconds
        try:
            child.send(message, hard_deadline)
        except _Gone as exc:
            self._discard(child, f"found dead ({exc})")
            raise _Stale from exc
        fetches = _Fetches(self, neo_calls)

        def took() -> int:
            # What the run is charged for: the time it really took, however it ended.
            elapsed = math.ceil((time.monotonic() - started) * 1000)
            return max(1, min(elapsed, math.ceil(timeout * 1000)))

        try:
            while True:
                reply = child.receive(hard_deadline)
                if reply is None:
                    duration_ms = took()
                    self._discard(child, "killed past its deadline")
                    return Outcome(
                        "timeout",
                        error=f"the execution timed out after {timeout:g} s "
                        "(its sandbox process was stopped)",
                        duration_ms=duration_ms,
                        fetches=fetches.count,
                    )
                if isinstance(reply, protocol.Done):
                    outcome = _outcome(reply, redact, took(), fetches.count)
                    if reply.retire:
                        self._discard(child, "retired after an internal error")
                    else:
                        self._release(child)
                    return outcome
                if not isinstance(reply, protocol.Wait):
                    raise _Violation(f"an unexpected {type(reply).__name__.lower()} message")
                fetches.start(reply.requests)
                answers = fetches.answers(deadline, block=not reply.more)
                if answers is None:
                    child.send({"op": protocol.ABORT}, hard_deadline)
                else:
                    child.send(protocol.resolved_message(answers), hard_deadline)
        except _Gone as exc:
            # Up to the violation or the crash, not the time it takes to kill the process.
            duration_ms = took()
            closed = self._discard(child, f"{_how(exc)} ({exc})")
            if closed:
                error = "the sandbox pool was closed"
            elif isinstance(exc, _Violation):
                error = f"the sandbox process broke the protocol ({exc}) and was replaced"
            else:
                error = f"sandbox crashed ({exc})"
            return Outcome("failed", error=error, duration_ms=duration_ms, fetches=fetches.count)
        except Exception as exc:
            # Nothing a child sends should get here; if something does, the run still ends
            # as failed, charged for the time it took, and the child is not trusted again.
            duration_ms = took()
            log.exception("sandbox process %d: the pool failed on what it sent", child.pid)
            self._discard(child, f"failed ({type(exc).__name__})")
            error = f"the sandbox failed ({type(exc).__name__})"
            return Outcome("failed", error=error, duration_ms=duration_ms, fetches=fetches.count)

    def compile(self, source: str) -> CompileError | None:
        """Check that ``source`` parses, without running any of it.

        Raises:
            SandboxError: the pool is closed, or sandbox processes will not start.
        """
        message = protocol.encode({"op": protocol.COMPILE, "source": source})
        if len(message) > protocol.MAX_MESSAGE_BYTES:
            limit = protocol.MAX_MESSAGE_BYTES // (1024 * 1024)
            return CompileError(f"the source exceeds {limit} MB")
        for _attempt in range(3):
            child = self._acquire()
            until = time.monotonic() + COMPILE_TIMEOUT_SECONDS
            try:
                child.send(message, until)
            except _Gone as exc:
                self._discard(child, f"found dead ({exc})")
                continue
            except BaseException:
                self._discard(child, "the pool failed while it compiled")
                raise
            try:
                reply = child.receive(until)
            except _Gone as exc:
                self._discard(child, f"{_how(exc)} while compiling ({exc})")
                return CompileError("the sandbox crashed while checking the source")
            except BaseException:
                self._discard(child, "the pool failed while it compiled")
                raise
            if not isinstance(reply, protocol.Compiled):
                self._discard(child, "killed: no answer to compile")
                return CompileError("the source could not be checked in time")
            self._release(child)
            if reply.message is None:
                return None
            return CompileError(cut_error(reply.message), reply.line, reply.column)
        raise SandboxError("sandbox processes keep dying before they take work")

    def close(self) -> None:
        """Stop every sandbox process; runs in progress end as failed. Idempotent."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [c for c in self._children if c not in idle]
            self._children.clear()
            self._cond.notify_all()
            threads, self._fetch_threads = self._fetch_threads, None
        # A busy process's pipes belong to the thread running it: it sees the end of output,
        # then closes them itself.
        for child in busy:
            child.signal_kill()
        for child in idle:
            child.stop()
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)

    # -- processes

    def fetch_threads(self) -> ThreadPoolExecutor:
        """Raises:
        _Gone: the pool was closed (the run in progress ends).
        """
        with self._cond:
            if self._closed:
                raise _Gone("the pool was closed")
            if self._fetch_threads is None:
                self._fetch_threads = ThreadPoolExecutor(
                    self._fetch_thread_count, thread_name_prefix="sandbox-fetch"
                )
            return self._fetch_threads

    def _acquire(self) -> _Child:
        dead: list[_Child] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise SandboxError("the sandbox pool is closed")
                    while self._idle:
                        child = self._idle.pop()
                        if child.alive():
                            return child
                        # It died while idle (killed from outside, or the OOM killer).
                        self._children.discard(child)
                        self._restarts += 1
                        dead.append(child)
                    if (
                        len(self._children) + self._starting < self.max_processes
                        and self._starting < self.max_starting
                    ):
                        self._starting += 1
                        break
                    self._cond.wait()
        finally:
            for child in dead:
                log.warning("sandbox process %d died while idle: replaced", child.pid)
                child.kill()
        return self._start_child()

    def _start_child(self) -> _Child:
        """Start a process in the start slot the caller took (``_starting``), and count it."""
        try:
            child = _Child.start(self.spec)
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._starting -= 1
            # Someone may be waiting for the start slot this one leaves.
            self._cond.notify()
            self._containment = child.containment
            skipped = {
                (step, why)
                for step, why in child.containment.items()
                if why != HELD and (step, why) not in self._warned
            }
            self._warned |= skipped
            closed = self._closed
            if not closed:
                self._children.add(child)
        for step, why in sorted(skipped):
            held = [s for s, w in child.containment.items() if w == HELD]
            log.warning(
                "sandbox processes are not contained by %s: %s (still held: %s)",
                step,
                why,
                ", ".join(held) or "nothing",
            )
        if not closed:
            return child
        child.kill()
        raise SandboxError("the sandbox pool is closed")

    def _release(self, child: _Child) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(child)
                self._cond.notify()
                return
        child.stop()

    def _discard(self, child: _Child, why: str) -> bool:
        """Kill ``child`` and count the restart; True if the pool was closed meanwhile."""
        with self._cond:
            closed = self._closed
            if child in self._children:
                self._children.discard(child)
                self._restarts += 1
            self._cond.notify()
        if not closed:
            log.warning("sandbox process %d %s: replaced", child.pid, why)
        child.kill()
        return closed
