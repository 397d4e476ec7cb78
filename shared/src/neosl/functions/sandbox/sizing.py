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
manifests against it.
"""

from __future__ import annotations

from neosl.functions.sandbox.types import MAX_MEMORY_MB

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
