"""Running tenants' JavaScript in QuickJS with hard limits.

``SandboxPool.run(job)`` runs a ``RunRequest`` in a warm sandbox process and returns its
``Outcome``; ``SandboxPool.compile(source)`` checks a source without running it. This package
never imports ``quickjs`` itself: only the sandbox processes
(``neosl.functions.sandbox.child``) do.
"""

from neosl.functions.sandbox.pool import NeoCaller, SandboxError, SandboxPool
from neosl.functions.sandbox.types import (
    LOG_LEVELS,
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MAX_MEMORY_MB,
    MAX_RESULT_BYTES,
    Action,
    CompileError,
    Limits,
    LogLine,
    Outcome,
    RunRequest,
    Status,
)

__all__ = [
    "LOG_LEVELS",
    "MAX_LOG_BYTES",
    "MAX_LOG_LINES",
    "MAX_MEMORY_MB",
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
]
