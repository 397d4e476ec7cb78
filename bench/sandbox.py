"""Cost of one execution through ``SandboxPool`` (warm child) next to bare QuickJS.

The same trivial function runs in four ways, alternating round by round so that drift hits
all of them alike; the table shows the median of the rounds:

* bare: a fresh ``quickjs.Context()``, its memory, time and stack limits, ``eval`` of the
  source and a call of ``main``, in a process of its own (this process never imports
  ``quickjs``: it starts sandbox processes, which must not be forked from a process that
  has);
* pool, back to back: one thread calling ``SandboxPool.run`` again as soon as it returns;
  the child is still freeing the last context and preparing the next one, so this is the
  child's whole cost per execution;
* pool, paced: the same with a pause after each run (``--pause``), as when executions do
  not arrive back to back: the child has its next context ready, which is the latency an
  execution sees;
* pool, N threads: ``--threads`` threads sharing a pool of as many children (throughput).

Exits non-zero only on a correctness failure (a wrong result, a failed or replaced sandbox),
never because of a timing.

    uv run python bench/sandbox.py [--seconds 2] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from stats import percentile

from neosl.functions.sandbox import Limits, RunRequest, SandboxPool

SOURCE = "function main(input, ctx) { return input + 1 }"
INPUT = 41
EXPECTED = 42
LIMITS = Limits(timeout_seconds=30.0, memory_mb=64)
GOAL_P50_MS = 0.5
GOAL_RATIO = 3.0

# Runs in a process of its own: prints a JSON list of per-call seconds.
_BARE = """
import json, sys, time
import quickjs

source, value, expected, memory, seconds = json.loads(sys.argv[1])
times = []
deadline = time.perf_counter() + seconds
while time.perf_counter() < deadline:
    started = time.perf_counter()
    context = quickjs.Context()
    context.set_memory_limit(memory * 1024 * 1024)
    context.set_time_limit(30.0)
    context.set_max_stack_size(1024 * 1024)
    context.eval(source)
    result = context.eval(f"main({value}, {{}})")
    del context
    times.append(time.perf_counter() - started)
    if result != expected:
        sys.exit(f"bare QuickJS returned {result!r}")
print(json.dumps(times))
"""


class BenchError(RuntimeError):
    """A correctness check failed; the figures cannot be trusted."""


@dataclass(frozen=True)
class Measurement:
    latencies: list[float]
    seconds: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def bare(seconds: float) -> Measurement:
    """Raises:
    BenchError: QuickJS gave a wrong result, or the worker process failed.
    """
    args = json.dumps([SOURCE, INPUT, EXPECTED, LIMITS.memory_mb, seconds])
    done = subprocess.run(
        [sys.executable, "-c", _BARE, args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"bare worker failed: {done.stderr.strip()}")
    latencies = json.loads(done.stdout)
    return Measurement(latencies, sum(latencies))


def through_pool(pool: SandboxPool, seconds: float, threads: int, pause: float) -> Measurement:
    """Raises:
    BenchError: a run did not succeed with the expected result.
    """
    job = RunRequest(SOURCE, input=INPUT, limits=LIMITS)
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def work(latencies: list[float]) -> None:
        while time.perf_counter() < deadline and not failures:
            started = time.perf_counter()
            outcome = pool.run(job)
            latencies.append(time.perf_counter() - started)
            if outcome.status != "succeeded" or outcome.result != EXPECTED:
                failures.append(f"{outcome.status}: {outcome.result!r} {outcome.error}")
            if pause:
                time.sleep(pause)

    began = time.perf_counter()
    workers = [threading.Thread(target=work, args=(lat,)) for lat in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise BenchError(f"a run failed: {failures[0]}")
    latencies = [x for lat in per_thread for x in lat]
    # Paced runs: the rate of the runs themselves, not of the pauses.
    busy = sum(latencies) / threads if pause else elapsed
    return Measurement(latencies, busy)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each timed run")
    p.add_argument("--rounds", type=int, default=3, help="timed runs per variant")
    p.add_argument("--threads", type=int, default=2, help="threads (and children) when shared")
    p.add_argument("--pause", type=float, default=0.002, help="seconds between paced runs")
    p.add_argument("--warmup", type=float, default=0.5, help="untimed run before the rounds")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or args.seconds <= 0 or args.pause <= 0:
        p.error("--rounds and --threads must be >= 1, --seconds and --pause > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"seconds={args.seconds:g} rounds={args.rounds} threads={args.threads} "
        f"pause={args.pause * 1000:g}ms warmup={args.warmup:g}s; {os.cpu_count()} CPUs"
    )
    print(f"function: {SOURCE!r} with input {INPUT}; memory limit {LIMITS.memory_mb} MB")
    print()
    single = SandboxPool(max_processes=1)
    shared = SandboxPool(max_processes=args.threads)
    try:
        # Every child starts now; none is ever forked later (nor from a process with quickjs).
        single.warm(1)
        shared.warm(args.threads)
        variants = {
            "bare QuickJS": lambda s: bare(s),
            "pool, back to back": lambda s: through_pool(single, s, 1, 0.0),
            "pool, paced": lambda s: through_pool(single, s, 1, args.pause),
            f"pool, {args.threads} threads": lambda s: through_pool(shared, s, args.threads, 0.0),
        }
        for run in variants.values():
            run(args.warmup)
        results: dict[str, list[Measurement]] = {name: [] for name in variants}
        for r in range(args.rounds):
            names = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in names:
                results[name].append(variants[name](args.seconds))
            line = ", ".join(f"{n} {results[n][-1].p50_ms:.3f}" for n in variants)
            print(f"  round {r + 1}: p50 ms: {line}")
        restarts = single.restarts + shared.restarts
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        single.close()
        shared.close()
    print()
    bare_p50 = statistics.median(m.p50_ms for m in results["bare QuickJS"])
    print(f"{'variant':<22}{'p50 ms':>9}{'p99 ms':>9}{'ops/s':>10}{'x bare':>9}   goal")
    for name, rounds in results.items():
        p50 = statistics.median(m.p50_ms for m in rounds)
        p99 = statistics.median(m.p99_ms for m in rounds)
        rate = statistics.median(m.rate for m in rounds)
        ratio = p50 / bare_p50
        if name == "bare QuickJS":
            verdict = ""
        else:
            met = p50 <= GOAL_P50_MS and ratio <= GOAL_RATIO
            verdict = "met" if met else "NOT met"
        print(f"{name:<22}{p50:>9.3f}{p99:>9.3f}{rate:>10,.0f}{ratio:>8.1f}x   {verdict}")
    print(
        f"(medians of the rounds; goal: p50 <= {GOAL_P50_MS} ms and <= {GOAL_RATIO:g}x bare; "
        "threads: p50 and ops/s over all threads)"
    )
    print()
    print(f"sandbox processes replaced: {restarts}")
    if restarts:
        print("FAILED: a sandbox process had to be replaced", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
