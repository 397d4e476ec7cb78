"""The JavaScript side of a sandbox process: runs functions' executions in QuickJS.

Imported by ``neosl.functions.sandbox.child`` once the process has contained itself
(``containment``), never by the pool: it imports ``quickjs``, which starts a thread at
import (a process that imported it must not fork). ``serve`` says ``ready`` and then
answers the pool's messages (``protocol``) until its input ends.

Every execution gets a fresh ``quickjs.Context`` (its own runtime and heap), so nothing one
execution leaves behind is visible to the next. No Python callable is ever added to a
context: ``set_time_limit`` and host callables exclude each other, and the engine's time
limit is what stops a CPU loop while keeping this process reusable. Console and fetch live
in a JavaScript prelude (``prelude*.js``) that queues log lines and requests; this process
drains the queues between slices of JavaScript, asks the pool to perform the requests, and
resolves the promises with the answers. Each slice (an ``eval``, a call into the prelude, one
promise job) runs with the time that remains as its limit.

The context for the next execution (with its prelude) is made right after an answer is
sent, while the pool has nothing for this process: compiling the prelude is most of the
cost of an execution, and this keeps it off the execution's path.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import resource
import sys
import time
from importlib import resources as importlib_resources
from typing import IO, Any, NoReturn

import quickjs

from neosl.functions import fetching
from neosl.functions.fetching import MAX_REQUESTS_PER_EXECUTION
from neosl.functions.sandbox import protocol
from neosl.functions.sandbox.types import (
    LOG_LEVELS,
    MAX_ERROR_BYTES,
    MAX_JSON_DEPTH,
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MAX_MEMORY_MB,
    MAX_NEO_ARGS_CHARS,
    MAX_NEO_ARGS_ITEMS,
    MAX_RESULT_BYTES,
    cut_error,
)

MB = 1024 * 1024
# QuickJS's own guard against deep recursion. It must fire long before the real stack (the
# main thread's: 8 MB by default) runs out, see _js_stack_bytes().
JS_STACK_BYTES = 1 * MB
# Promise jobs run between two checks of whether main has settled.
JOBS_PER_STATE_CHECK = 64
# What a final drain of the console may still take after the deadline (CPU seconds).
DRAIN_GRACE_SECONDS = 0.05
COMPILE_MEMORY_MB = 128
PREPARE_SECONDS = 1.0
COMPILE_SECONDS = 2.0
# Thrown before the first statement of a source that is only being compiled: the engine
# parses the whole script first, then runs this, so none of the source ever runs.
_COMPILED = "neosl:compiled"
# How calling main fails, with no frame of the function's own, when there is no main.
_NO_MAIN = (
    "ReferenceError: main is not defined",
    "ReferenceError: main is not initialized",
    "TypeError: not a function",
)
_POSITION = re.compile(r"at <input>:(\d+):(\d+)")
_STRICT = re.compile(r"""\A(?:\s|//[^\n]*|/\*.*?\*/)*(["'])use strict\1""", re.DOTALL)

# Why neo.call and neo.invoke refuse arguments (after "neo.call: " or "neo.invoke: ").
ARGS_TOO_LONG = f"the arguments are longer than {MAX_NEO_ARGS_CHARS:,} characters of JSON"
ARGS_TOO_DEEP = f"the arguments are nested more than {MAX_JSON_DEPTH} levels deep"
ARGS_TOO_MANY = f"the arguments hold more than {MAX_NEO_ARGS_ITEMS:,} values"

_HERE = importlib_resources.files("neosl.functions.sandbox")


def _part(name: str, limits: dict[str, int | str]) -> str:
    """The source of a part of the prelude with its limits given: ``(P, host) => …``.

    A part checks its bounds first, so that a function's code can catch a refusal; this
    process checks each of them again on what the prelude hands over (a character count is a
    lower bound of a UTF-8 size: the prelude counts characters, this process bytes). Only a
    part that is used compiles its limits, into an object without a prototype: nothing the
    function's code puts on Object.prototype is ever read as a limit.
    """
    given = '{"__proto__":null,' + json.dumps(limits)[1:]
    return f"(P, host) => ({_HERE.joinpath(name).read_text()})(P, host, {given})"


PRELUDE = (
    _HERE.joinpath("prelude.js").read_text()
    + f"({MAX_RESULT_BYTES}, {MAX_ERROR_BYTES}, {MAX_LOG_LINES}, {MAX_LOG_BYTES})"
)
PRELUDE_CONSOLE = _part(
    "prelude_console.js",
    {"MAX_RESULT_BYTES": MAX_RESULT_BYTES, "MAX_ERROR_CHARS": MAX_ERROR_BYTES},
)
PRELUDE_FETCH = _part(
    "prelude_fetch.js",
    {
        "MAX_REQUESTS": MAX_REQUESTS_PER_EXECUTION,
        "MAX_URL_CHARS": fetching.MAX_URL_BYTES,
        "MAX_HEADERS_CHARS": fetching.MAX_HEADERS_BYTES,
        "MAX_METHOD_CHARS": fetching.MAX_METHOD_BYTES,
        "MAX_BODY_CHARS": fetching.MAX_BODY_BYTES,
        "URL_TOO_LONG": fetching.URL_TOO_LONG,
        "HEADERS_TOO_LARGE": fetching.HEADERS_TOO_LARGE,
        "METHOD_TOO_LONG": fetching.METHOD_TOO_LONG,
        "BODY_TOO_LARGE": fetching.BODY_TOO_LARGE,
    },
)
PRELUDE_NEO = _part(
    "prelude_neo.js",
    {
        "MAX_ARGS_CHARS": MAX_NEO_ARGS_CHARS,
        "MAX_ARGS_DEPTH": MAX_JSON_DEPTH,
        "MAX_ARGS_ITEMS": MAX_NEO_ARGS_ITEMS,
        "ARGS_TOO_LONG": ARGS_TOO_LONG,
        "ARGS_TOO_DEEP": ARGS_TOO_DEEP,
        "ARGS_TOO_MANY": ARGS_TOO_MANY,
    },
)


class _Stop(Exception):
    """The execution ends here, as ``status`` with ``error``."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class _Settled(Exception):
    """main returned; ``result`` is its value as JSON text."""

    def __init__(self, result: str) -> None:
        super().__init__()
        self.result = result


def _clean(text: str) -> str:
    # Lone surrogates from JavaScript strings cannot be stored or encoded anywhere else.
    return text.encode("utf-8", "replace").decode("utf-8")


class Channel:
    """This process's end of the protocol: the original stdin and stdout.

    File descriptors 0 and 1 are pointed elsewhere (``/dev/null``, stderr) so that nothing
    printed by accident, by the engine or by Python, can ever corrupt a message.
    """

    def __init__(self) -> None:
        reader = os.dup(0)
        writer = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)
        self._reader: IO[bytes] = os.fdopen(reader, "rb")
        self._writer: IO[bytes] = os.fdopen(writer, "wb")

    def receive(self) -> dict[str, Any] | None:
        """The parent's next message; None when the parent has gone.

        Raises:
            protocol.ProtocolError: a garbled message.
        """
        line = self._reader.readline(protocol.MAX_MESSAGE_BYTES)
        if not line:
            return None
        return protocol.decode(line)

    def send(self, message: dict[str, Any] | bytes) -> None:
        self._writer.write(message if isinstance(message, bytes) else protocol.encode(message))
        self._writer.flush()


class _Logs:
    """Console lines of one execution within MAX_LOG_LINES and MAX_LOG_BYTES (UTF-8)."""

    def __init__(self) -> None:
        self.lines: list[list[Any]] = []
        self.size = 0
        self.truncated_at: float | None = None

    def add(self, flat: Any, truncated_at: Any) -> None:
        if not isinstance(flat, list):
            return
        for i in range(0, len(flat) - 2, 3):
            level, stamp, message = flat[i], flat[i + 1], flat[i + 2]
            if not (
                level in LOG_LEVELS and isinstance(stamp, int | float) and isinstance(message, str)
            ):
                continue
            self._add(level, stamp, message)
        if isinstance(truncated_at, int | float) and truncated_at and self.truncated_at is None:
            self.truncated_at = truncated_at

    def _add(self, level: str, stamp: float, message: str) -> None:
        if self.truncated_at is not None:
            return
        if len(self.lines) >= MAX_LOG_LINES:
            self.truncated_at = stamp
            return
        data = message.encode("utf-8", "replace")
        if self.size + len(data) > MAX_LOG_BYTES:
            # Cut on a character boundary.
            data = data[: MAX_LOG_BYTES - self.size].decode("utf-8", "ignore").encode()
            self.truncated_at = stamp
            if not data:
                return
        self.size += len(data)
        self.lines.append([level, stamp, data.decode()])

    def dump(self) -> list[list[Any]]:
        if self.truncated_at is None:
            return self.lines
        note = (
            f"log output truncated: at most {MAX_LOG_LINES:,} lines and "
            f"{MAX_LOG_BYTES // MB} MB per execution"
        )
        return [*self.lines, ["warn", self.truncated_at, note]]


def _valid_request(request: Any) -> bool:
    if not isinstance(request, dict):
        return False
    headers = request.get("headers")
    body = request.get("body")
    return (
        isinstance(request.get("id"), int)
        and isinstance(request.get("url"), str)
        and isinstance(request.get("method"), str)
        and isinstance(headers, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        and (body is None or isinstance(body, str))
    )


def _valid_neo(item: Any, *, with_id: bool) -> bool:
    """A neo.call request or neo.invoke action as the prelude makes them (args: JSON text)."""
    return (
        isinstance(item, dict)
        and (not with_id or isinstance(item.get("id"), int))
        and isinstance(item.get("contract"), str)
        and protocol.CONTRACT.fullmatch(item["contract"]) is not None
        and isinstance(item.get("method"), str)
        and protocol.METHOD.fullmatch(item["method"]) is not None
        and isinstance(item.get("args"), str)
    )


def _args_refusal(args: str) -> str | None:
    """Why neo.call or neo.invoke refuses these arguments (JSON text), if it does."""
    if len(args) > MAX_NEO_ARGS_CHARS:
        return ARGS_TOO_LONG
    depth, items = protocol.shape(args.encode("utf-8", "surrogatepass"))
    if depth > MAX_JSON_DEPTH:
        return ARGS_TOO_DEEP
    if items > MAX_NEO_ARGS_ITEMS:
        return ARGS_TOO_MANY
    return None


class _Fresh:
    """A new context with the prelude evaluated, made while this process waits for work:
    it has run nothing but the prelude, and serves exactly one execution."""

    def __init__(self) -> None:
        self.context = quickjs.Context()
        self.context.set_max_stack_size(_js_stack_bytes())
        self.context.set_memory_limit(MAX_MEMORY_MB * MB)
        self.context.set_time_limit(PREPARE_SECONDS)
        self.host = self.context.eval(PRELUDE)(PRELUDE_CONSOLE, PRELUDE_FETCH, PRELUDE_NEO)


class _Run:
    """One execution, from a ``run`` message to its ``done`` message."""

    def __init__(self, channel: Channel, message: dict[str, Any], fresh: _Fresh) -> None:
        self.channel = channel
        self.timeout = float(message["timeout"])
        self.deadline = time.monotonic() + self.timeout
        self.memory_mb = min(max(int(message["memory_mb"]), 1), MAX_MEMORY_MB)
        self.source = str(message["source"])
        self.input = str(message["input"])
        self.ctx = str(message["ctx"])
        self.logs = _Logs()
        # neo.call requests and neo.invoke actions this run may make (0: not available).
        self.neo_calls_allowed = max(int(message.get("neo_calls") or 0), 0)
        self.neo_actions_allowed = max(int(message.get("neo_actions") or 0), 0)
        self.neo_calls = 0
        self.actions: list[dict[str, Any]] = []
        self.fetches = 0
        self.seen: set[int] = set()
        self.outstanding: set[int] = set()
        self.to_send: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.context = fresh.context
        self.host = fresh.host
        self.context.set_memory_limit(self.memory_mb * MB)

    def execute(self) -> bytes:
        """The ``done`` message that ends the run, encoded."""
        status, result, error = "failed", None, None
        host = self.host
        try:
            self._call(self._evaluate)
            self._call(
                host,
                "start",
                self.input,
                self.ctx,
                self.neo_calls_allowed,
                self.neo_actions_allowed,
            )
            self._loop(host)
        except _Settled as settled:
            data = settled.result.encode("utf-8", "replace")
            depth, _items = protocol.shape(data)
            if len(data) > MAX_RESULT_BYTES:
                error = (
                    f"the result of main is too large: {len(data):,} bytes of JSON, "
                    f"at most {MAX_RESULT_BYTES:,}"
                )
            elif depth > MAX_JSON_DEPTH:
                error = f"the result of main is nested more than {MAX_JSON_DEPTH} levels deep"
            else:
                status, result = "succeeded", settled.result
        except _Stop as stop:
            status, error = stop.status, _clean(cut_error(stop.error))
            self._last_logs(host)
        reply = {
            "op": protocol.DONE,
            "status": status,
            "result": result,
            "error": error,
            "logs": self.logs.dump(),
            "fetches": self.fetches,
            "actions": self.actions if status == "succeeded" else [],
            "retire": False,
        }
        data = protocol.encode(reply)
        if len(data) <= protocol.MAX_CHILD_MESSAGE_BYTES:
            return data
        # Only a function that means to can get here (many actions with long arguments, a
        # result and console output of escaped control characters): it fails, with its logs.
        limit = protocol.MAX_CHILD_MESSAGE_BYTES // MB
        reply.update(
            status="failed",
            result=None,
            actions=[],
            error=f"the execution's output is too large: {len(data):,} bytes, at most {limit} MB",
        )
        return protocol.encode(reply)

    def _evaluate(self) -> None:
        # The script runs; its last value may have no Python form (a BigInt, a Symbol, a long
        # concatenated string): the binding raises TypeError then, and the value is not
        # wanted anyway.
        with contextlib.suppress(TypeError):
            self.context.eval(self.source)

    def _loop(self, host: Any) -> NoReturn:
        while True:
            self._run_jobs(host)
            self._absorb(self._call(host, "drain"))
            if self.refused:
                answers, self.refused = self.refused, []
                self._call(host, "settle", json.dumps(answers))
                continue
            if not self.to_send and not self.outstanding:
                raise _Stop(
                    "timeout",
                    "main's promise never settled: nothing was left to wait for "
                    "(no promise job, no fetch)",
                )
            self.channel.send(self._next_wait())
            reply = self.channel.receive()
            if reply is None:
                sys.exit(0)
            if reply["op"] == protocol.ABORT:
                raise self._timed_out("waiting for fetch")
            if reply["op"] != protocol.RESOLVED or not isinstance(reply.get("responses"), list):
                raise protocol.ProtocolError(f"unexpected {reply['op']!r} during a run")
            answers = [
                a
                for a in reply["responses"]
                if isinstance(a, dict) and a.get("id") in self.outstanding
            ]
            self.outstanding.difference_update(a["id"] for a in answers)
            if answers:
                self._call(host, "settle", json.dumps(answers))

    def _next_wait(self) -> bytes:
        """A ``wait`` with as many of the requests to send as fit in one message; ``more``
        if some are left for the next one."""
        budget = protocol.MAX_CHILD_MESSAGE_BYTES - 64
        parts: list[bytes] = []
        size = 0
        while self.to_send:
            part = protocol.encode_json(self.to_send[0])
            # One request always fits (12 MB at most); a few of them may not.
            if parts and size + len(part) + 1 > budget:
                break
            parts.append(part)
            size += len(part) + 1
            self.outstanding.add(self.to_send.pop(0)["id"])
        return protocol.wait_message(parts, more=bool(self.to_send))

    def _run_jobs(self, host: Any) -> None:
        """Run promise jobs until there are none, or main has settled."""
        context = self.context
        count = 0
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out()
            context.set_time_limit(remaining)
            try:
                if not context.execute_pending_job():
                    return
            except quickjs.JSException as exc:
                raise self._failure(str(exc)) from None
            count += 1
            if count % JOBS_PER_STATE_CHECK == 0 and self._call(host, "state"):
                return

    def _call(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` with the remaining time as the engine's limit.

        Raises:
            _Stop: the deadline has passed, or JavaScript threw.
        """
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        self.context.set_time_limit(remaining)
        try:
            return fn(*args)
        except quickjs.JSException as exc:
            raise self._failure(str(exc)) from None

    def _absorb(self, snapshot: Any) -> None:
        """Take the prelude's queued console lines and requests, and its state.

        Raises:
            _Settled: main returned.
            _Stop: main threw, or the prelude's answer makes no sense.
        """
        try:
            state, payload, truncated_at, flat, requests, actions = protocol.loads(
                snapshot, max_depth=protocol.MAX_MESSAGE_DEPTH
            )
        except Exception:
            raise _Stop("failed", "the function broke the sandbox's console and fetch") from None
        self.logs.add(flat, truncated_at)
        if isinstance(requests, list):
            for request in requests:
                self._request(request)
        if isinstance(actions, list):
            for action in actions:
                self._action(action)
        if state == 1 and isinstance(payload, str):
            raise _Settled(payload)
        if state == 2:
            raise self._failure(payload if isinstance(payload, str) else "main failed", True)

    def _action(self, action: Any) -> None:
        """Raises:
        _Stop: more actions than allowed, or one the prelude would not have made.
        """
        if not _valid_neo(action, with_id=False):
            raise _Stop("failed", "neo.invoke: the function broke the sandbox's neo helpers")
        if len(self.actions) >= self.neo_actions_allowed:
            raise _Stop(
                "failed", f"neo.invoke: at most {self.neo_actions_allowed} actions per execution"
            )
        refusal = _args_refusal(action["args"])
        if refusal is not None:
            raise _Stop("failed", f"neo.invoke: {refusal}")
        self.actions.append(
            {"contract": action["contract"], "method": action["method"], "args": action["args"]}
        )

    def _request(self, request: Any) -> None:
        # The prelude checked all this already; its checks run in the function's realm.
        if isinstance(request, dict) and request.get("kind") == "neo.call":
            self._neo_call(request)
            return
        if not _valid_request(request) or request["id"] in self.seen:
            return
        self.seen.add(request["id"])
        error = fetching.refusal(
            request["url"], request["method"], request["headers"], request["body"]
        )
        if error is None and self.fetches >= MAX_REQUESTS_PER_EXECUTION:
            error = f"fetch: at most {MAX_REQUESTS_PER_EXECUTION} requests per execution"
        if error is None:
            self.fetches += 1
            self.to_send.append({k: request[k] for k in ("id", "url", "method", "headers", "body")})
            return
        self.refused.append({"id": request["id"], "error": error})

    def _neo_call(self, request: dict[str, Any]) -> None:
        if not _valid_neo(request, with_id=True) or request["id"] in self.seen:
            return
        self.seen.add(request["id"])
        refusal = _args_refusal(request["args"])
        if refusal is not None:
            self.refused.append({"id": request["id"], "error": f"neo.call: {refusal}"})
            return
        if self.neo_calls >= self.neo_calls_allowed:
            error = f"neo.call: at most {self.neo_calls_allowed} calls per execution"
            self.refused.append({"id": request["id"], "error": error})
            return
        self.neo_calls += 1
        self.to_send.append(
            {
                "id": request["id"],
                "kind": "neo.call",
                "contract": request["contract"],
                "method": request["method"],
                "args": request["args"],
            }
        )

    def _last_logs(self, host: Any) -> None:
        # The execution is over; keep what it logged if that is still cheap to get.
        try:
            self.context.set_time_limit(DRAIN_GRACE_SECONDS)
            snapshot = protocol.loads(host("drain"), max_depth=protocol.MAX_MESSAGE_DEPTH)
            self.logs.add(snapshot[3], snapshot[2])
        except Exception:  # noqa: S110 - whatever broke, the outcome is already decided
            pass

    def _timed_out(self, doing: str = "") -> _Stop:
        while_ = f" ({doing})" if doing else ""
        return _Stop("timeout", f"the execution timed out after {self.timeout:g} s{while_}")

    def _failure(self, text: str, thrown_by_main: bool = False) -> _Stop:
        """How an error ends the execution; ``text`` is its message and stack."""
        head, _, stack = text.rstrip("\n").partition("\n")
        if stack == "undefined":
            # What the binding shows for a thrown value that is not an Error.
            head, stack, text = f"Uncaught {head}", "", f"Uncaught {head}"
        if thrown_by_main and not stack and head in _NO_MAIN:
            return _Stop("failed", "the source does not define a function main(input, ctx)")
        # Uncatchable, so it can only come from the engine.
        if head == "InternalError: interrupted" and not thrown_by_main:
            return self._timed_out()
        out_of_memory = f"out of memory: the execution used more than its {self.memory_mb} MB"
        if head == "InternalError: out of memory":
            return _Stop("failed", f"{out_of_memory}\n{stack}" if stack else out_of_memory)
        if head in ("null", "Uncaught null"):
            # Out of memory even for the error object, QuickJS throws null instead; a
            # deliberate `throw null` cannot be told apart.
            return _Stop("failed", f"{out_of_memory} (reported by the engine as a thrown null)")
        return _Stop("failed", text.rstrip("\n"))


def check_syntax(source: str) -> dict[str, Any]:
    """Parse ``source`` as a script without running any of it: a ``compiled`` message."""
    context = quickjs.Context()
    context.set_memory_limit(COMPILE_MEMORY_MB * MB)
    context.set_max_stack_size(_js_stack_bytes())
    context.set_time_limit(COMPILE_SECONDS)
    text = "//" + source[2:] if source.startswith("#!") else source
    # A "use strict" directive must stay first to keep its meaning (and its stricter syntax).
    strict = "'use strict';" if _STRICT.match(text) else ""
    try:
        context.eval(f"{strict}throw {json.dumps(_COMPILED)};\n{text}")
    except quickjs.JSException as exc:
        message = str(exc)
    else:
        message = "the source could not be checked"
    head = message.split("\n", 1)[0]
    if head == _COMPILED:
        return {"op": protocol.COMPILED, "message": None, "line": None, "column": None}
    line = column = None
    position = _POSITION.search(message)
    # Line 1 is the throw put in front of the source.
    if position is not None and int(position[1]) > 1:
        line, column = int(position[1]) - 1, int(position[2])
    if head.startswith("InternalError: interrupted"):
        head = "the source took too long to parse"
    message = _clean(cut_error(head))
    return {"op": protocol.COMPILED, "message": message, "line": line, "column": column}


@functools.cache
def _js_stack_bytes() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft >= 4 * JS_STACK_BYTES:
        return JS_STACK_BYTES
    return soft // 4


def serve(channel: Channel, containment: dict[str, str]) -> int:
    """Say ``ready`` (with what ``containment`` came to: step → ``HELD`` or why not), then
    answer the pool's messages until its input ends; the process's exit code.

    Raises:
        protocol.ProtocolError: the pool sent something the protocol does not allow.
    """
    # The next execution's context is made ahead, off the path of a request.
    fresh: _Fresh | None = _Fresh()
    channel.send({"op": protocol.READY, "pid": os.getpid(), "containment": containment})
    while True:
        message = channel.receive()
        if message is None:
            return 0
        if message["op"] == protocol.RUN:
            run = None
            retire = False
            try:
                run = _Run(channel, message, fresh or _Fresh())
                fresh = None
                reply = run.execute()
            except (protocol.ProtocolError, SystemExit):
                raise
            except Exception as exc:
                # Python itself failed (e.g. MemoryError): this process may be damaged.
                retire = True
                reply = protocol.encode(
                    {
                        "op": protocol.DONE,
                        "status": "failed",
                        "result": None,
                        "error": f"the sandbox failed: {type(exc).__name__}",
                        "logs": [],
                        "fetches": 0,
                        "actions": [],
                        "retire": True,
                    }
                )
            channel.send(reply)
            if retire:
                return 1
            # Freeing the old context and making the next one happen after the answer.
            del run
            fresh = _Fresh()
        elif message["op"] == protocol.COMPILE:
            channel.send(check_syntax(str(message["source"])))
        else:
            raise protocol.ProtocolError(f"unexpected {message['op']!r}")
