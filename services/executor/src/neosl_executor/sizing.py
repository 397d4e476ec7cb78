"""How much memory an executor can take at most, so that its container's limit adds up.

Every part has a hard bound, so the sum is one too:

- a sandbox process: its function's memory limit (the engine's accounting, at most
  ``MAX_MEMORY_MB``) plus the process around it (21 MB measured: Python, the engine and the
  prelude; ``PROCESS_OVERHEAD_MB`` leaves room);
- the executor itself: its base, and for each execution it runs at once the largest message
  a child may send (``protocol.MAX_CHILD_MESSAGE_BYTES``, read and parsed), the fetch bodies
  in flight (``fetching.MAX_BODY_BYTES`` each) and the outcome it keeps until the finish
  is written.

A container limit below ``executor_memory_mb`` lets the kernel's OOM killer choose a
victim in the container, possibly the executor with every run in flight; at or above it,
a function that takes too much memory fails alone. ``tests/deploy`` checks the Kubernetes
manifests against it, and the executor checks its own container's limit when it starts
(``check_memory_limit``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from neosl.functions.sandbox.types import MAX_MEMORY_MB

log = logging.getLogger(__name__)

PROCESS_OVERHEAD_MB = 32
EXECUTOR_BASE_MB = 160
EXECUTOR_MB_PER_EXECUTION = 64


def sandbox_process_mb(max_function_mb: int = MAX_MEMORY_MB) -> int:
    """The most one sandbox process takes."""
    return max_function_mb + PROCESS_OVERHEAD_MB


def executor_memory_mb(
    concurrency: int, processes: int, max_function_mb: int = MAX_MEMORY_MB
) -> int:
    """The most an executor with ``concurrency`` threads and ``processes`` sandbox processes
    takes, in MB: its container's memory limit must be at least this."""
    running = min(concurrency, processes)
    return (
        EXECUTOR_BASE_MB
        + running * EXECUTOR_MB_PER_EXECUTION
        + processes * sandbox_process_mb(max_function_mb)
    )


# The memory limit of this process's cgroup (v2), "max" when there is none.
_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


def container_limit_mb(path: Path = _CGROUP_LIMIT) -> int | None:
    """This container's memory limit in MB, or None when it has none (or it cannot be read)."""
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    if not raw.isdigit():
        return None
    return int(raw) // 2**20


def check_memory_limit(concurrency: int, processes: int, path: Path = _CGROUP_LIMIT) -> bool:
    """Warn when the container's limit is below what the executor can take at most; False
    then (nothing is refused: the operator decides)."""
    limit = container_limit_mb(path)
    need = executor_memory_mb(concurrency, processes)
    if limit is not None and limit < need:
        log.warning(
            "the container's memory limit (%d MB) is below what %d executions at once and %d "
            "sandbox processes can take (%d MB): a function that takes too much memory may get "
            "the executor killed with every run in flight; raise the limit or lower "
            "NSL_SANDBOX_PROCESSES / NSL_EXECUTOR_CONCURRENCY (docs/operations.md)",
            limit,
            concurrency,
            processes,
            need,
        )
        return False
    return True
