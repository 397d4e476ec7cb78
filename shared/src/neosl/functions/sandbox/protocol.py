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
    "headers", "body", "url"} | {"id", "value"}]}``  (answers to ``wait``; at least one;
    ``value`` is the JSON text of a ``neo.call``'s result)
    ``{"op": "abort"}``  (answer to ``wait`` once the deadline has passed)

Child → parent:
    ``{"op": "ready", "pid"}``  once, when it can take work
    ``{"op": "wait", "fetches": [{"id", "url", "method", "headers", "body"} |
    {"id", "kind": "neo.call", "contract", "method", "args"}]}``
        the function waits for requests: these new ones, and any still outstanding
    ``{"op": "done", "status", "result", "error", "logs": [[level, ms, message]], "fetches",
    "actions": [{"contract", "method", "args"}], "retire"}``  ``result`` is the JSON text of
    main's value; ``actions`` the ``neo.invoke`` calls of a run that succeeded (``args`` as
    JSON text); ``retire`` asks to be replaced
    ``{"op": "compiled", "message", "line", "column"}``  (``message`` null when it compiles)
"""

from __future__ import annotations

import json
from typing import Any

RUN = "run"
COMPILE = "compile"
RESOLVED = "resolved"
ABORT = "abort"
READY = "ready"
WAIT = "wait"
DONE = "done"
COMPILED = "compiled"

# Bytes of one message at most; more means the other side is broken.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """A message that is not what the protocol allows."""


def encode(message: dict[str, Any]) -> bytes:
    # ASCII only: a lone surrogate from JavaScript stays an escape instead of failing here.
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Raises:
    ProtocolError: not a JSON object with a string ``op``.
    """
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError(f"not a message: {line[:80]!r}")
    return message
