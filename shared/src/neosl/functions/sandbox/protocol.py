"""What the pool and a sandbox child say to each other: one JSON object per line.

The child's stdin carries the parent's messages and its stdout the child's; they strictly
take turns, so neither side ever needs to read and write at once.

Parent → child:
    ``{"op": "run", "source", "input", "ctx", "timeout", "memory_mb", "neo_calls",
    "neo_actions"}``
        ``input`` and ``ctx`` are JSON texts, handed to ``main`` as they are; ``neo_calls``
        and ``neo_actions`` are how many ``neo.call``/``neo.invoke`` the run may make.
    ``{"op": "compile", "source"}``
    ``{"op": "resolved", "responses": [{"id", "error"} | {"id", "status", "statusText",
    "headers", "body", "url"} | {"id", "value"}]}``  (answers to ``wait``; empty only after
    a ``wait`` with ``more``; ``value`` is the JSON text of a ``neo.call``'s result)
    ``{"op": "abort"}``  (answer to ``wait`` once the deadline has passed)

Child → parent:
    ``{"op": "ready", "pid", "containment": {step: "held" | why not}}``  once, when it can
    take work; ``containment`` has one entry for each of ``containment.STEPS``, saying
    whether the operating system's containment took that step (a reason: printable ASCII,
    at most ``containment.MAX_REASON_CHARS`` characters)
    ``{"op": "wait", "more", "fetches": [{"id", "url", "method", "headers", "body"} |
    {"id", "kind": "neo.call", "contract", "method", "args"}]}``
        the function waits for requests: these new ones, and any still outstanding; ``more``:
        further new ones follow in the next ``wait`` (they did not fit in one message), so
        the parent answers at once, with what is ready (perhaps nothing)
    ``{"op": "done", "status", "result", "error", "logs": [[level, ms, message]], "fetches",
    "actions": [{"contract", "method", "args"}], "retire"}``  ``result`` is the JSON text of
    main's value; ``actions`` the ``neo.invoke`` calls of a run that succeeded (``args`` as
    JSON text); ``retire`` asks to be replaced
    ``{"op": "compiled", "message", "line", "column"}``  (``message`` null when it compiles)

The parent trusts nothing a child says: a child runs tenants' code, and an engine bug could
hand that code the child. ``parse_child_message`` reads one line of a child into a typed
message, checking everything (size, encoding, nesting, every field and every bound) before
the pool acts on any of it; whatever else a child sends is a ``ProtocolError``.
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

from neosl.functions.fetching import refusal
from neosl.functions.sandbox.containment import MAX_REASON_CHARS, STEPS
from neosl.functions.sandbox.types import (
    LOG_LEVELS,
    MAX_JSON_DEPTH,
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MAX_NEO_ARGS_CHARS,
    MAX_NEO_ARGS_ITEMS,
    MAX_RESULT_BYTES,
)

RUN = "run"
COMPILE = "compile"
RESOLVED = "resolved"
ABORT = "abort"
READY = "ready"
WAIT = "wait"
DONE = "done"
COMPILED = "compiled"

MB = 1024 * 1024
# Bytes of one parent → child message at most (source, input and ctx; fetch answers).
MAX_MESSAGE_BYTES = 64 * MB
# Bytes of one child → parent message at most, its line end included; the pool reads no more
# of a longer one. A working child stays well within it: its largest messages are a ``wait``
# carrying a 2 MB request body of control characters (each written as \u00XX: 12 MB), and a
# ``done`` with 1 MB of such console output (6 MB) besides a 256 KB result.
MAX_CHILD_MESSAGE_BYTES = 16 * MB
# How deep a message itself nests (a result or arguments are JSON texts: strings in it).
MAX_MESSAGE_DEPTH = 8
# Values in one child message (arrays, objects and their items): a line of "{}," makes five
# million dictionaries of 16 MB, which no working child sends.
MAX_MESSAGE_ITEMS = 128 * 1024
# Console output a child may send past MAX_LOG_BYTES: its one line saying it cut the rest.
LOG_NOTE_BYTES = 256
# A neo.call's or neo.invoke's contract and method, as the prelude checks them.
CONTRACT = re.compile(r"0x[0-9a-f]{40}")
METHOD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class ProtocolError(Exception):
    """A message that is not what the protocol allows."""


class TooComplex(ValueError):
    """JSON nested deeper, or with more values, than allowed (the message says which)."""


def encode(message: dict[str, Any]) -> bytes:
    return encode_json(message) + b"\n"


def encode_json(value: Any) -> bytes:
    # ASCII only: a lone surrogate from JavaScript stays an escape instead of failing here.
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def wait_message(requests: list[bytes], more: bool) -> bytes:
    """A ``wait`` carrying ``requests``, each already ``encode_json``-ed."""
    return b'{"op":"wait","more":%s,"fetches":[%s]}\n' % (
        b"true" if more else b"false",
        b",".join(requests),
    )


def resolved_message(responses: list[bytes]) -> bytes:
    """A ``resolved`` carrying ``responses``, each already ``encode_json``-ed."""
    return b'{"op":"resolved","responses":[%s]}\n' % b",".join(responses)


# A JSON string once escaped quotes and backslashes are gone: no quote inside.
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def shape(data: bytes) -> tuple[int, int]:
    """How deep arrays and objects nest in the JSON text ``data`` (UTF-8), and about how many
    values it holds (arrays and objects, plus one per comma), without parsing or recursing.

    Exact for valid JSON. For text that is not, the count is exact up to the first place a
    parser would reject, which is all a parser ever reaches: checking ``shape`` first keeps
    any parser from recursing deeper than the depth it returned.
    """
    if b"\\" in data:
        # Escapes pair up from the left: "\\\\" first, then an escaped quote is no quote.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    bare = _STRING.sub(b"", data)
    brackets = bare.translate(_BRACKETS, _NOT_BRACKETS)
    opened = brackets.count(b"\x01")
    items = opened + bare.count(b",")
    if opened <= 1:
        return opened, items
    # The running sum of +1 per opening and -1 per closing bracket, at its highest.
    return max(accumulate(array("b", brackets))), items


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, *, max_depth: int, max_items: int | None = None) -> Any:
    """The value of the JSON text ``data`` (bytes: UTF-8), nested at most ``max_depth`` deep
    and with at most ``max_items`` values (see ``shape``), checked before parsing.

    Raises:
        TooComplex: nested deeper, or more values; the message says which.
        ValueError: not JSON (NaN and Infinity included), or bytes that are not UTF-8.
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    depth, items = shape(raw)
    if depth > max_depth:
        raise TooComplex(f"nested more than {max_depth} levels deep")
    if max_items is not None and items > max_items:
        raise TooComplex(f"more than {max_items:,} values")
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, parse_constant=_no_constant)


def decode(line: bytes) -> dict[str, Any]:
    """A parent's message, as the child reads it.

    Raises:
        ProtocolError: not a JSON object with a string ``op``.
    """
    try:
        message = loads(line, max_depth=MAX_MESSAGE_DEPTH)
    except Exception as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError(f"not a message: {line[:80]!r}")
    return message


# -- what a child says, checked


@dataclass(frozen=True)
class Ready:
    pid: int
    # For each containment step: "held", or why it did not.
    containment: dict[str, str]


@dataclass(frozen=True)
class FetchItem:
    id: int
    url: str
    method: str
    headers: dict[str, str]
    body: str | None


@dataclass(frozen=True)
class NeoCallItem:
    id: int
    contract: str
    method: str
    # The parsed JSON of the call's arguments.
    args: Any


@dataclass(frozen=True)
class Wait:
    requests: list[FetchItem | NeoCallItem]
    more: bool = False


@dataclass(frozen=True)
class DoneAction:
    contract: str
    method: str
    args: Any


@dataclass(frozen=True)
class Done:
    status: Literal["succeeded", "failed", "timeout"]
    # main's value (succeeded only) and its JSON text.
    result: Any = None
    result_text: str | None = None
    error: str | None = None
    logs: list[tuple[str, float, str]] = field(default_factory=list)
    actions: list[DoneAction] = field(default_factory=list)
    retire: bool = False


@dataclass(frozen=True)
class Compiled:
    message: str | None
    line: int | None
    column: int | None


ChildMessage = Ready | Wait | Done | Compiled


def parse_child_message(line: bytes) -> ChildMessage:
    """One line from a sandbox child (without its line end), checked all through.

    Raises:
        ProtocolError: anything but a message the protocol allows, whatever it is: longer
            than MAX_CHILD_MESSAGE_BYTES, not UTF-8, not JSON, nested or numbered beyond
            MAX_MESSAGE_DEPTH or MAX_MESSAGE_ITEMS, a field missing or of a wrong type, a
            request, result, argument list or console output over its bound. The message
            says what, in a few words.
    """
    if len(line) > MAX_CHILD_MESSAGE_BYTES:
        raise ProtocolError(f"a message longer than {MAX_CHILD_MESSAGE_BYTES // MB} MB")
    try:
        message = loads(line, max_depth=MAX_MESSAGE_DEPTH, max_items=MAX_MESSAGE_ITEMS)
    except TooComplex as exc:
        raise ProtocolError(f"a message {exc}") from None
    except Exception as exc:
        # Not UTF-8, not JSON, or no memory left for it: all the same to the pool. (What a
        # child says is never quoted: it may hold a secret of the run.)
        raise ProtocolError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    op = message.get("op")
    try:
        match op:
            case "ready":
                return Ready(_int(message, "pid"), _containment(message.get("containment")))
            case "wait":
                return _wait(message)
            case "done":
                return _done(message)
            case "compiled":
                return Compiled(
                    _optional(message, "message", str),
                    _optional_int(message, "line"),
                    _optional_int(message, "column"),
                )
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"a {op} message that cannot be read ({type(exc).__name__})") from None
    raise ProtocolError("an unknown op")


def _get(message: dict[str, Any], key: str, kind: type) -> Any:
    value = message.get(key)
    # bool is an int to Python, never to the protocol.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"{key!r} missing or not a {kind.__name__}")
    return value


def _int(message: dict[str, Any], key: str) -> int:
    value: int = _get(message, key, int)
    return value


def _str(message: dict[str, Any], key: str) -> str:
    value: str = _get(message, key, str)
    return value


def _optional(message: dict[str, Any], key: str, kind: type) -> Any:
    return None if message.get(key) is None else _get(message, key, kind)


def _optional_int(message: dict[str, Any], key: str) -> int | None:
    value: int | None = _optional(message, key, int)
    return value


def _target(item: dict[str, Any], what: str) -> tuple[str, str]:
    contract, method = _str(item, "contract"), _str(item, "method")
    if not CONTRACT.fullmatch(contract) or not METHOD.fullmatch(method):
        raise ProtocolError(f"a {what} contract or method the sandbox must refuse")
    return contract, method


def _args(text: str, what: str) -> Any:
    if len(text) > MAX_NEO_ARGS_CHARS:
        raise ProtocolError(f"{what} arguments longer than {MAX_NEO_ARGS_CHARS:,} characters")
    try:
        return loads(text, max_depth=MAX_JSON_DEPTH, max_items=MAX_NEO_ARGS_ITEMS)
    except TooComplex as exc:
        raise ProtocolError(f"{what} arguments {exc}") from None
    except ValueError:
        raise ProtocolError(f"{what} arguments that are not JSON") from None


def _containment(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or set(raw) != set(STEPS):
        raise ProtocolError("'containment' missing, or not one report per step")
    for report in raw.values():
        if not (
            isinstance(report, str)
            and 0 < len(report) <= MAX_REASON_CHARS
            and report.isascii()
            and report.isprintable()
        ):
            raise ProtocolError("a containment report that is not a short line of text")
    return {step: raw[step] for step in STEPS}


def _wait(message: dict[str, Any]) -> Wait:
    raw = message.get("fetches")
    if not isinstance(raw, list):
        raise ProtocolError("'fetches' missing or not a list")
    requests: list[FetchItem | NeoCallItem] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ProtocolError("a request that is not an object")
        if item.get("kind") == "neo.call":
            contract, method = _target(item, "neo.call")
            args = _args(_str(item, "args"), "neo.call")
            requests.append(NeoCallItem(_int(item, "id"), contract, method, args))
            continue
        headers = _get(item, "headers", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ProtocolError("request headers that are not strings")
        request = FetchItem(
            _int(item, "id"),
            _str(item, "url"),
            _str(item, "method"),
            headers,
            _optional(item, "body", str),
        )
        why = refusal(request.url, request.method, request.headers, request.body)
        if why is not None:
            raise ProtocolError(f"a request the sandbox must refuse ({why})")
        requests.append(request)
    more = message.get("more", False)
    if not isinstance(more, bool):
        raise ProtocolError("'more' not a bool")
    return Wait(requests, more)


def _done(message: dict[str, Any]) -> Done:
    status = message.get("status")
    if status not in ("succeeded", "failed", "timeout"):
        raise ProtocolError("an unknown status")
    result = result_text = None
    if status == "succeeded":
        result_text = _str(message, "result")
        if len(result_text.encode("utf-8", "surrogatepass")) > MAX_RESULT_BYTES:
            raise ProtocolError(f"a result larger than {MAX_RESULT_BYTES:,} bytes")
        try:
            result = loads(result_text, max_depth=MAX_JSON_DEPTH)
        except TooComplex as exc:
            raise ProtocolError(f"a result {exc}") from None
        except ValueError:
            raise ProtocolError("a result that is not JSON") from None
    logs = _logs(message.get("logs"))
    actions: list[DoneAction] = []
    for item in message.get("actions") or []:
        if not isinstance(item, dict):
            raise ProtocolError("an action that is not an object")
        contract, method = _target(item, "neo.invoke")
        args = _args(_str(item, "args"), "neo.invoke")
        actions.append(DoneAction(contract, method, args))
    retire = message.get("retire", False)
    if not isinstance(retire, bool):
        raise ProtocolError("'retire' not a bool")
    return Done(
        status,
        result,
        result_text,
        _optional(message, "error", str),
        logs,
        actions,
        retire,
    )


def _logs(raw: Any) -> list[tuple[str, float, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ProtocolError("'logs' not a list")
    if len(raw) > MAX_LOG_LINES + 1:
        raise ProtocolError(f"more than {MAX_LOG_LINES:,} console lines")
    logs: list[tuple[str, float, str]] = []
    size = 0
    for line in raw:
        if not (
            isinstance(line, list)
            and len(line) == 3
            and line[0] in LOG_LEVELS
            and isinstance(line[1], int | float)
            and not isinstance(line[1], bool)
            and isinstance(line[2], str)
        ):
            raise ProtocolError("a console line that is not [level, ms, message]")
        size += len(line[2].encode("utf-8", "surrogatepass"))
        logs.append((line[0], line[1], line[2]))
    if size > MAX_LOG_BYTES + LOG_NOTE_BYTES:
        raise ProtocolError(f"more than {MAX_LOG_BYTES // MB} MB of console output")
    return logs
