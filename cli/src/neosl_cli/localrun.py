"""``neosl functions run FILE.js``: a function in the very same sandbox, without the stack.

A tenant tries code before deploying it: no database, broker or node is needed. Secrets are
given on the command line (``--secret NAME=VALUE``) and reach ``ctx.secrets`` like granted
ones; ``fetch`` goes through the same SSRF guard as in the service (``NSL_FETCH_ALLOW``
opens exceptions, e.g. for a local server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    functions = sub.add_parser("functions", help="tenant functions").add_subparsers(
        dest="action", required=True
    )
    run = functions.add_parser(
        "run",
        help="run a function file locally in the sandbox and print result, logs and duration",
    )
    run.add_argument("file", type=Path, metavar="FILE.js")
    run.add_argument("--input", default="null", help="JSON given to main as input")
    run.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a secret in ctx.secrets (repeatable)",
    )
    run.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    run.add_argument("--memory", type=int, default=128, help="MB (default 128)")
    run.set_defaults(standalone=run_file)


def run_file(args: argparse.Namespace) -> int:
    """Exit 0 when main succeeded, 1 when it failed or timed out, 2 on bad arguments."""
    # Here, not at the top: the ``neosl`` parser imports this module (httpx is slow to load).
    from neosl.functions.netguard import Fetcher
    from neosl.functions.sandbox import SandboxPool
    from neosl.functions.sandbox.types import Limits, RunRequest

    try:
        source = args.file.read_text()
        input_ = json.loads(args.input)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: --input is not JSON: {exc}", file=sys.stderr)
        return 2
    secrets: dict[str, str] = {}
    for item in args.secret:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"error: --secret wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        secrets[name] = value
    if not 1 <= args.timeout <= 300 or not 16 <= args.memory <= 512:
        print("error: --timeout must be 1-300 s and --memory 16-512 MB", file=sys.stderr)
        return 2
    allow = [a.strip() for a in os.environ.get("NSL_FETCH_ALLOW", "").split(",") if a.strip()]
    pool = SandboxPool(max_processes=1, fetcher=Fetcher(allow=allow))
    try:
        error = pool.compile(source)
        if error is not None:
            where = f" (line {error.line}, column {error.column})" if error.line else ""
            print(f"error: the source does not compile: {error.message}{where}", file=sys.stderr)
            return 1
        ctx = {
            "executionId": None,
            "functionId": None,
            "version": None,
            "trigger": None,
            "secrets": secrets,
        }
        outcome = pool.run(
            RunRequest(
                source, input_, ctx, Limits(timeout_seconds=args.timeout, memory_mb=args.memory)
            )
        )
    finally:
        pool.close()
    for line in outcome.logs:
        print(f"[{line.timestamp.isoformat()}] {line.level}: {line.message}", file=sys.stderr)
    print(f"status: {outcome.status} in {outcome.duration_ms} ms", file=sys.stderr)
    if outcome.status == "succeeded":
        print(json.dumps(outcome.result, indent=2))
        return 0
    print(f"error: {outcome.error}", file=sys.stderr)
    return 1
