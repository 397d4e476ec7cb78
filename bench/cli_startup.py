"""Start-up time of the operator commands next to a bare interpreter.

Each row is a command run as an operator runs it: the installed ``neosl`` (or ``neosl-dev``)
script in a fresh process, its output thrown away. The commands need no server: ``--help``
of ``neosl``, of each of its subcommands and of ``neosl-dev`` (when the dev stack is
installed), and ``neosl neo relay-keygen``, which needs no configuration. The baseline is
``python -c pass`` with the same interpreter, in the same rounds. Every round runs each row
once, starting one row further down the list each time, so that a busy neighbour slows all
rows alike. The table shows, per row, the median of the rounds: wall time, what it adds to
the baseline, and the CPU time (user + system) of the process, which a busy machine moves far
less than the wall time.

Exits non-zero only when a command fails, never because of a timing.

    uv run python bench/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from neosl_cli.main import build_parser

BASELINE = "python -c pass"


def subcommands() -> list[str]:
    """The ``neosl`` subcommands, those added through ``neosl.commands`` included."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    raise AssertionError("neosl has no subcommands")


def rows(scripts: Path) -> dict[str, list[str]]:
    """Each row's label and the command line it runs."""
    neosl = str(scripts / "neosl")
    commands = {BASELINE: [sys.executable, "-c", "pass"], "neosl --help": [neosl, "--help"]}
    for name in subcommands():
        commands[f"neosl {name} --help"] = [neosl, name, "--help"]
    commands["neosl neo relay-keygen"] = [neosl, "neo", "relay-keygen"]
    neosl_dev = scripts / "neosl-dev"
    if neosl_dev.exists():
        commands["neosl-dev --help"] = [str(neosl_dev), "--help"]
    return commands


def run_once(argv: Sequence[str]) -> tuple[float, float]:
    """Wall seconds from starting ``argv`` to its exit, and the CPU seconds it used.

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds (default 10)")
    args = parser.parse_args(argv)
    commands = rows(Path(sys.executable).parent)
    labels = list(commands)
    walls: dict[str, list[float]] = {label: [] for label in labels}
    cpus: dict[str, list[float]] = {label: [] for label in labels}
    print(f"{args.runs} rounds, {os.cpu_count()} CPUs, {sys.executable}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("PYTHONDONTWRITEBYTECODE is set: modules without a cached .pyc compile every run")
    for round_ in range(args.runs):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            try:
                wall, cpu = run_once(commands[label])
            except subprocess.CalledProcessError as exc:
                print(f"{label}: exit {exc.returncode}\n{exc.stderr.decode()}", file=sys.stderr)
                return 1
            walls[label].append(wall)
            cpus[label].append(cpu)
    base = statistics.median(walls[BASELINE])
    width = max(map(len, labels))
    print(f"\n{'command':<{width}}  {'wall s':>6}  {'+ baseline s':>12}  {'CPU s':>6}")
    for label in labels:
        wall = statistics.median(walls[label])
        added = "" if label == BASELINE else f"{wall - base:.3f}"
        cpu = statistics.median(cpus[label])
        print(f"{label:<{width}}  {wall:6.3f}  {added:>12}  {cpu:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
