"""Running tenants' JavaScript in QuickJS with hard limits.

``SandboxPool.run(job)`` runs a ``RunRequest`` in a warm sandbox process and returns its
``Outcome``; ``SandboxPool.compile(source)`` checks a source without running it. This package
never imports ``quickjs`` itself: only the sandbox processes
(``neosl.functions.sandbox.child``, through ``engine``) do, once the operating system
contains them (``containment``: no network, no file written, another user, no access to
the executor's environment or memory).

Every bound an execution's output keeps is a constant here (``MAX_RESULT_BYTES``,
``MAX_ERROR_BYTES``, ``MAX_LOG_LINES``, ``MAX_LOG_BYTES``, ``MAX_JSON_DEPTH``,
``MAX_NEO_ARGS_*``; those of fetch are in ``neosl.functions.fetching``). Each is enforced in
the sandbox process and checked again by the pool; ``cut_error`` is how an error is cut to
``MAX_ERROR_BYTES``, for whoever stores one.
"""

from neosl.functions.sandbox.pool import NeoCaller, SandboxError, SandboxPool
from neosl.functions.sandbox.types import (
    ERROR_CUT,
    LOG_LEVELS,
    MAX_ERROR_BYTES,
    MAX_JSON_DEPTH,
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MAX_MEMORY_MB,
    MAX_NEO_ARGS_CHARS,
    MAX_NEO_ARGS_ITEMS,
    MAX_RESULT_BYTES,
    Action,
    CompileError,
    Limits,
    LogLine,
    Outcome,
    RunRequest,
    Status,
    cut_error,
)

__all__ = [
    "ERROR_CUT",
    "LOG_LEVELS",
    "MAX_ERROR_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LOG_BYTES",
    "MAX_LOG_LINES",
    "MAX_MEMORY_MB",
    "MAX_NEO_ARGS_CHARS",
    "MAX_NEO_ARGS_ITEMS",
    "MAX_RESULT_BYTES",
    "Action",
    "CompileError",
    "Limits",
    "LogLine",
    "NeoCaller",
    "Outcome",
    "RunRequest",
    "SandboxError",
    "SandboxPool",
    "Status",
    "cut_error",
]
