"""What goes into a sandboxed run and what comes out (the contract of
``neosl.functions.sandbox``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

# A function's return value, as JSON, at most this large.
MAX_RESULT_BYTES = 256 * 1024
# Arrays and objects nested at most this deep in a result or in neo.call/neo.invoke
# arguments: deeper ones are refused before any parser recurses into them.
MAX_JSON_DEPTH = 64
# The JSON of one neo.call's or neo.invoke's arguments at most (characters), and at most this
# many values in it (arrays, objects and their items; the executor checks them again,
# tighter).
MAX_NEO_ARGS_CHARS = 256 * 1024
MAX_NEO_ARGS_ITEMS = 8192
# An execution's error (the message and stack of what it threw, or why it was stopped), in
# UTF-8; a longer one is cut and ends with ERROR_CUT (see cut_error).
MAX_ERROR_BYTES = 64 * 1024
ERROR_CUT = f"\n[error cut: it was longer than {MAX_ERROR_BYTES // 1024} KB]"
# Console output kept per execution; past either limit one "truncated" line is kept.
MAX_LOG_LINES = 1000
MAX_LOG_BYTES = 1024 * 1024
LOG_LEVELS = ("log", "info", "warn", "error", "debug")
# The largest memory limit a function may have (MB); sandbox processes are sized for it.
MAX_MEMORY_MB = 512

Status = Literal["succeeded", "failed", "timeout"]


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float = 30.0
    memory_mb: int = 128
    # neo.call and neo.invoke per execution (0: not available).
    neo_calls: int = 0
    neo_actions: int = 0


@dataclass(frozen=True)
class Action:
    """A contract call a function asked for with ``neo.invoke`` (``args`` not yet checked)."""

    contract: str
    method: str
    args: Any


@dataclass(frozen=True)
class RunRequest:
    """One run of a function's source.

    ``ctx`` is what the function's ``main(input, ctx)`` receives as ``ctx``: ``executionId``,
    ``functionId``, ``version``, ``trigger`` and ``secrets`` (name → plaintext, only the
    granted ones). Secret values are also redacted (``***``) from logs and errors.
    """

    source: str
    input: Any = None
    ctx: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    timestamp: dt.datetime


@dataclass(frozen=True)
class Outcome:
    status: Status
    result: Any = None
    # The message and the JS stack of a thrown error, or why the run was stopped.
    error: str | None = None
    logs: list[LogLine] = field(default_factory=list)
    duration_ms: int = 0
    fetches: int = 0
    # Only for a run that succeeded.
    actions: list[Action] = field(default_factory=list)


@dataclass(frozen=True)
class CompileError:
    message: str
    line: int | None = None
    column: int | None = None


def cut_error(text: str) -> str:
    """``text`` if it fits in ``MAX_ERROR_BYTES`` (UTF-8), else its beginning, cut on a
    character boundary, followed by ``ERROR_CUT``, within ``MAX_ERROR_BYTES`` in all.
    Cutting again changes nothing."""
    if len(text) <= MAX_ERROR_BYTES // 4:
        return text
    # More characters than bytes allowed are too many whatever they are: never encode more.
    data = text[: MAX_ERROR_BYTES + 1].encode("utf-8", "replace")
    if len(data) <= MAX_ERROR_BYTES:
        return text
    keep = MAX_ERROR_BYTES - len(ERROR_CUT.encode())
    return data[:keep].decode("utf-8", "ignore") + ERROR_CUT
