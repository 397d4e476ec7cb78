"""``neosl-dev``: the whole system on one machine, with no servers installed.

``neosl-dev up`` starts embedded PostgreSQL, Redis and a Neo N3 node (each only when its
URL is not set), applies the schema, then runs every process of the Procfile in the
foreground with prefixed logs until Ctrl-C or SIGTERM, and stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from neosl import migrate
from neosl.config import ConfigError, load_settings
from neosl.db import short_lived_engine
from neosl_devstack.servers import ServerError
from neosl_devstack.stack import Ports, Stack


def _up(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    procfile = Path(args.procfile)
    stack = Stack(root=root, ports=Ports.dev(os.environ))
    print(f"neosl-dev: starting servers (data in {root})", flush=True)
    try:
        env = {**os.environ, **stack.start()}
    except ServerError as exc:
        print(f"neosl-dev: {exc}", file=sys.stderr)
        return 1
    try:
        env.setdefault("NSL_API_PORT", "8000")
        env.setdefault("NSL_FLOWER_PORT", "5555")
        # A laptop-sized executor: 8 sandbox processes ready at start, more on demand.
        env.setdefault("NSL_SANDBOX_WARM", "8")
        # A small, non-zero price, so that billing shows in the dev stack.
        env.setdefault("NSL_FUNCTION_BASE_FEE", "0.0001")
        env.setdefault("NSL_FUNCTION_FEE_PER_100MS", "0.00001")
        try:
            settings = load_settings(env)
        except ConfigError as exc:
            print(f"neosl-dev: configuration error: {exc}", file=sys.stderr)
            return 2
        with short_lived_engine(settings) as engine:
            applied = migrate.upgrade(engine, settings.db_dir)
        print(f"neosl-dev: schema {'applied ' + ', '.join(applied) if applied else 'up to date'}")
        manager = Manager(Printer(sys.stdout))
        for name, command in parse_procfile(procfile.read_text()).processes.items():
            manager.add_process(name, command, env=env)
        _print_urls(env, settings.neo_rpc_url)
        manager.loop()
        return int(manager.returncode or 0)
    finally:
        stack.stop()
        print("neosl-dev: stopped", flush=True)


def _print_urls(env: dict[str, str], neo_rpc: str) -> None:
    api = f"http://127.0.0.1:{env['NSL_API_PORT']}"
    print(
        "\n".join(
            [
                "neosl-dev: ready when the processes below have started:",
                f"  API          {api}/v1   (probe: {api}/readyz)",
                f"  API docs     {api}/docs",
                f"  Flower       http://127.0.0.1:{env['NSL_FLOWER_PORT']}",
                f"  Neo N3 RPC   {neo_rpc}",
                "  Ctrl-C stops everything.",
            ]
        ),
        flush=True,
    )


def _env(args: argparse.Namespace) -> int:
    """Print the variables of a running dev stack, for `eval "$(neosl-dev env)"`.

    Paths are absolute, so the commands work from any folder once evaluated.
    """
    root = Path(args.dir).resolve()
    if not root.is_dir():
        # Most often run outside the repository: say so rather than export nothing.
        print(
            f"neosl-dev: no dev stack data in {root}; run `make dev` first and run this in "
            "the repository's root (or pass --dir)",
            file=sys.stderr,
        )
        return 1
    stack = Stack(root=root, ports=Ports.dev(os.environ))
    ports = stack.ports
    values = {
        **stack.secrets(),
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or f"postgresql+psycopg://postgres@127.0.0.1:{ports.postgres}/{stack.database}",
        "REDIS_URL": os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{ports.redis}/0",
        "NEO_RPC_URL": os.environ.get("NEO_RPC_URL") or f"http://127.0.0.1:{ports.neo_rpc}",
    }
    if not (os.environ.get("NEO_RPC_URL") or os.environ.get("NEO_RPC_URLS")):
        # The embedded chain's faucet for `neosl devnet fund`; its password file lies next
        # to it. An outside node's committee is not ours, so nothing is exported for it.
        wallet = os.environ.get("NSL_DEVNET_WALLET") or stack.committee_wallet_path
        values["NSL_DEVNET_WALLET"] = str(Path(wallet).resolve())
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neosl-dev", description=__doc__)
    parser.add_argument("--dir", default=".dev", help="data folder (default: .dev)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system in the foreground")
    up.add_argument("--procfile", default="Procfile")
    up.set_defaults(func=_up)
    sub.add_parser("env", help="print shell exports for the dev stack's servers").set_defaults(
        func=_env
    )
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
