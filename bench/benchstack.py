"""The embedded servers a benchmark runs on: its own, never those a developer has configured."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from neosl_devstack.stack import Ports, Stack

SERVER_VARS = ("DATABASE_URL", "REDIS_URL", "NEO_RPC_URL", "NEO_RPC_URLS")
# What NEO_RPC_URL is for a benchmark without a chain: the settings need one, nothing uses it.
UNUSED_RPC_URL = "http://127.0.0.1:9"


@contextmanager
def bench_servers(
    root: Path, *, durable: bool, chain: bool = False, neo_block_ms: int = 1000
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """Fresh embedded PostgreSQL and Redis (and a Neo node with ``chain``) under
    ``root/stack`` on random ports, database ``neosl_bench``; stopped on exit.

    Yields the servers and the environment for the benchmark's processes: this one's without
    the server variables, plus the started servers' URLs, and this interpreter's folder first
    on ``PATH`` (for ``celery``, ``gunicorn``…).
    """
    # The embedded PostgreSQL runs as an unprivileged user when we are root: it must be able
    # to reach its folder.
    root.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARS}
    if not chain:
        env["NEO_RPC_URL"] = UNUSED_RPC_URL
    servers = Stack(
        root=root / "stack",
        ports=Ports.random(),
        durable=durable,
        database="neosl_bench",
        neo_block_ms=neo_block_ms,
        env=env,
    )
    started = servers.start()
    try:
        env.update(started)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        yield servers, env
    finally:
        servers.stop()
