"""Fair share: one tenant's flood of executions next to another tenant's ``invoke?wait``.

Tenant A queues ``--flood`` executions of a function that runs about ``--busy-ms`` (40 ms)
from 8 client threads; meanwhile tenant B invokes a trivial function with ``?wait=10`` every
``--every`` seconds (200 ms) until A's backlog has run. B's latency during the flood (p50,
p90) is shown next to B's latency with the system idle, measured first in the same run. Goal:
B's p90 during the flood ≤ 1 s and ≤ 10 x its idle p50.

Everything runs as in production (``bench/executions.py``'s system: embedded PostgreSQL and
Redis, the API under gunicorn and the executor with the Procfile's lines), with the share
``NSL_EXECUTIONS_PER_TENANT`` as configured (default 8). Executions cost nothing. Exits
non-zero only on a correctness failure (a refused request, an execution that did not
succeed), never because of a timing.

    uv run python bench/fair_share.py [--flood 2000] [--busy-ms 40] [--every 0.2] [--idle 20]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from executions import (
    BenchError,
    create_function,
    invoke_all,
    register,
    system,
    wait_finished,
)
from stats import percentile


def create_as(api_url: str, headers: dict[str, str], source: str) -> int:
    """A function of the tenant ``headers`` authenticate.

    Raises:
        BenchError: the API refused it.
    """
    body = {"name": f"fn{time.monotonic_ns()}", "source_code": source}
    reply = httpx.post(f"{api_url}/v1/functions", json=body, headers=headers, timeout=30)
    if reply.status_code != 201:
        raise BenchError(f"creating a function answered {reply.status_code}: {reply.text}")
    function_id: int = reply.json()["id"]
    return function_id


def waited(client: httpx.Client, url: str) -> float:
    """Seconds one ``?wait`` invoke took to answer the finished execution.

    Raises:
        BenchError: it did not finish within its wait, or failed.
    """
    started = time.perf_counter()
    reply = client.post(url, json={"input": None})
    took = time.perf_counter() - started
    if reply.status_code != 200 or reply.json().get("status") != "succeeded":
        raise BenchError(f"B's invoke answered {reply.status_code}: {reply.text[:200]}")
    return took


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--flood", type=int, default=2000, help="tenant A's executions")
    p.add_argument("--busy-ms", type=int, default=40, help="how long each of A's runs")
    p.add_argument("--every", type=float, default=0.2, help="seconds between B's invokes")
    p.add_argument("--idle", type=int, default=20, help="B's invokes with the system idle")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    p.add_argument("--durable", action=argparse.BooleanOptionalAction, default=False)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(
        f"flood={args.flood} busy-ms={args.busy_ms} every={args.every:g}s idle={args.idle} "
        f"durable={'on' if args.durable else 'off'}"
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp,
            system(args, Path(tmp), "127.0.0.1") as sys_,
        ):
            print(sys_.describe)
            print(f"share: NSL_EXECUTIONS_PER_TENANT={sys_.settings.executions_per_tenant}")
            busy = (
                "function main() { const end = Date.now() + "
                f"{args.busy_ms}; while (Date.now() < end) {{}} return 1 }}"
            )
            flood_fn = create_function(sys_, busy)
            b_headers, _ = register(sys_.api_url)
            quick_fn = create_as(sys_.api_url, b_headers, "function main() { return 1 }")
            url = f"{sys_.api_url}/v1/functions/{quick_fn}/invoke?wait=10"
            with httpx.Client(headers=b_headers, timeout=30) as client:
                idle = []
                for _ in range(args.idle):
                    idle.append(waited(client, url))
                    time.sleep(args.every)
                during: list[float] = []
                stop = threading.Event()
                errors: list[BaseException] = []

                def tenant_b() -> None:
                    try:
                        while not stop.is_set():
                            during.append(waited(client, url))
                            stop.wait(args.every)
                    except BaseException as exc:
                        errors.append(exc)

                flood: dict[int, Any] = {}

                def tenant_a() -> None:
                    try:
                        ids, _, _ = invoke_all(sys_, flood_fn, [None] * args.flood, 8)
                        flood.update(ids)
                    except BaseException as exc:
                        errors.append(exc)

                b = threading.Thread(target=tenant_b)
                a = threading.Thread(target=tenant_a)
                began = time.perf_counter()
                b.start()
                a.start()
                a.join()
                try:
                    if not errors:
                        drained = wait_finished(sys_, list(flood), began, args.timeout)
                finally:
                    stop.set()
                    b.join(60)
                if errors:
                    raise BenchError(f"{type(errors[0]).__name__}: {errors[0]}")
            idle_p50 = statistics.median(idle)
            p50, p90 = percentile(during, 0.5), percentile(during, 0.9)
            print(f"\nA's {args.flood} executions ran in {drained:.1f} s")
            print(f"{'B, invoke?wait':<28}{'requests':>9}{'p50 ms':>9}{'p90 ms':>9}")
            idle_p90 = percentile(idle, 0.9)
            print(f"{'idle':<28}{len(idle):>9}{idle_p50 * 1000:>9.1f}{idle_p90 * 1000:>9.1f}")
            print(f"{'during A flood':<28}{len(during):>9}{p50 * 1000:>9.1f}{p90 * 1000:>9.1f}")
            print(
                f"\nB's p90 during the flood: {p90 * 1000:.0f} ms "
                f"({p90 / idle_p50:.1f} x its idle p50); goal ≤ 1000 ms and ≤ 10 x"
            )
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
