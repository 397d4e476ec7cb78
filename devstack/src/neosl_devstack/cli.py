"""``neosl-dev``: the whole system on one machine, with no servers installed.

``neosl-dev up`` starts embedded PostgreSQL, Redis and a Neo N3 node (each only when its
URL is not set), applies the schema, then runs every process of the Procfile in the
foreground with prefixed logs until Ctrl-C or SIGTERM, and stops everything it started;
on Linux nothing it started outlives it, even if it is killed. ``neosl-dev env`` prints the
variables of the stack running in the data folder. ``neosl-dev chain`` runs only the Neo N3
dev chain, the same way (the dev chain container).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from neosl_devstack.datadir import (
    RUNNING_FILE,
    RunningStack,
    process_start,
    read_running,
    read_secrets,
    remove_running,
    write_running,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from neosl.config import Settings
    from neosl_devstack.neo import EmbeddedNeo
    from neosl_devstack.stack import Stack
    from neosl_devstack.starter import Pool

# `neosl-dev env` and `neosl-dev --help` must answer at once: this module imports only
# small modules, and each command the heavy ones it uses (SQLAlchemy, neo3, the servers,
# the demo markets) when it runs.

# The workers' metrics ports: this + their line in the Procfile (9101 the executor, …).
DEV_METRICS_PORT = 9100


def _up(args: argparse.Namespace) -> int:
    from honcho.environ import parse_procfile

    from neosl import migrate
    from neosl.config import ConfigError, load_settings
    from neosl.db import short_lived_engine
    from neosl.pricefeeds import catalog
    from neosl_devstack import starter
    from neosl_devstack.markets import DemoMarkets
    from neosl_devstack.processes import Runner
    from neosl_devstack.servers import ServerError
    from neosl_devstack.stack import Ports, Stack

    root = Path(args.dir).resolve()
    procfile = Path(args.procfile)
    try:
        running = read_running(root)
    except ValueError:
        running = None
    if running is not None and running.is_alive():
        print(
            f"neosl-dev: a dev stack is already running in {root} (pid {running.pid})",
            file=sys.stderr,
        )
        return 1
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
        env.setdefault("NSL_PRICEFEED_ROUND_FEE", "0.00001")
        env.setdefault("NSL_PRICEFEED_SOURCE_FEE", "0.000001")
        # Actions need a balance covering this cap (plus the service fee) before the relay
        # test-invokes them: a dev-sized cap, so that a tenant holding a few GAS can act.
        env.setdefault("NSL_ACTION_MAX_FEE", "1")
        # Each new tenant's starter balance (README, "Walk-through"): deposits this stack
        # makes on its chain from a faucet of its own; NSL_DEV_STARTER_GAS=0 turns it off.
        faucet: str | None = None
        if stack.neo is not None:
            faucet = starter.faucet_wif(root)
            env.setdefault("NSL_DEV_STARTER_GAS", "10")
            env.setdefault("NSL_DEV_FAUCET_ADDRESS", starter.faucet_address(faucet))
        # Price sources answer from local demo markets, unless pointed elsewhere.
        markets = DemoMarkets().__enter__()
        for name in catalog.NAMES:
            env.setdefault(f"NSL_PRICE_SOURCE_{name.upper()}_URL", markets.base_url(name))
        try:
            settings = load_settings(env)
        except ConfigError as exc:
            print(f"neosl-dev: configuration error: {exc}", file=sys.stderr)
            markets.__exit__()
            return 2
        if stack.neo is not None and not env.get("NSL_PRICEFEED_CONTRACT"):
            env["NSL_PRICEFEED_CONTRACT"] = deploy_pricefeed(stack.neo, settings)
            settings = load_settings(env)
            print(f"neosl-dev: PriceFeed contract {settings.pricefeed_contract}", flush=True)
        with short_lived_engine(settings) as engine:
            applied = migrate.upgrade(engine, settings.db_dir)
            created = demo_feeds(engine, settings)
            if stack.neo is not None:
                funded = fund_operator(stack.neo, engine, settings)
                if funded:
                    print(f"neosl-dev: the operator's account holds {funded} GAS", flush=True)
            pool = starter_pool(stack.neo, engine, settings, faucet)
        print(f"neosl-dev: schema {'applied ' + ', '.join(applied) if applied else 'up to date'}")
        if created:
            print(f"neosl-dev: public demo price feeds {', '.join(created)} created")
        runner = Runner(sys.stdout)
        metrics = metrics_dir(root)
        for line, (name, command) in enumerate(
            parse_procfile(procfile.read_text()).processes.items()
        ):
            own = process_env(env, metrics, line, name)
            # The workers create theirs; Flower only reads it, and would fail at each event.
            Path(own["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
            runner.add(name, command, env={**env, **own})
        write_running(root, running_stack(stack, env, settings.neo_rpc_url))
        _print_urls(env, settings.neo_rpc_url)
        if pool is not None:
            pool.start()
        try:
            return runner.run()
        finally:
            if pool is not None:
                pool.stop()
            markets.__exit__()
    finally:
        remove_running(root, os.getpid())
        stack.stop()
        print("neosl-dev: stopped", flush=True)


def starter_pool(
    neo: EmbeddedNeo | None, engine: Engine, settings: Settings, faucet: str | None
) -> Pool | None:
    """Fill the pool of starter deposits now (the first tenant may register at once), and
    the thread that keeps it filled while the stack runs; None when there is none to keep."""
    hot = settings.deposit_address
    amount = settings.dev_starter_gas
    if neo is None or faucet is None or hot is None or amount <= 0:
        return None
    from neosl.neo.rpc import NeoRpc
    from neosl_devstack import starter

    with NeoRpc(settings.neo_rpc_urls) as rpc:
        made = starter.fill(
            rpc,
            engine,
            neo.committee_wallet_path,
            neo.committee_wallet_password,
            faucet,
            hot,
            amount,
        )
    if made:
        print(f"neosl-dev: {made} starter deposits of {amount} GAS made", flush=True)
    return starter.Pool(
        settings,
        neo.committee_wallet_path,
        neo.committee_wallet_password,
        faucet,
        hot,
        amount,
    )


def running_stack(stack: Stack, env: dict[str, str], neo_rpc_url: str) -> RunningStack:
    """What ``neosl-dev up`` started, for ``neosl-dev env``; ``env`` is the processes' own."""
    ports = {
        "api": int(env["NSL_API_PORT"]),
        "flower": int(env["NSL_FLOWER_PORT"]),
        "metrics": metrics_base(env),
    }
    if stack.postgres is not None:
        ports["postgres"] = stack.ports.postgres
    if stack.redis is not None:
        ports["redis"] = stack.ports.redis
    if stack.neo is not None:
        ports["neo_rpc"] = stack.ports.neo_rpc
        ports["neo_p2p"] = stack.ports.neo_p2p
    exports = {
        "DATABASE_URL": env["DATABASE_URL"],
        "REDIS_URL": env["REDIS_URL"],
        "NEO_RPC_URL": neo_rpc_url,
    }
    if env.get("NEO_RPC_URLS"):
        exports["NEO_RPC_URLS"] = env["NEO_RPC_URLS"]
    exports["API"] = f"http://127.0.0.1:{ports['api']}"
    if stack.neo is not None:
        # The embedded chain's faucet for `neosl devnet fund`; its password file lies next
        # to it. An outside node's committee is not ours, so nothing is exported for it.
        exports["NSL_DEVNET_WALLET"] = str(stack.committee_wallet_path)
    return RunningStack(
        pid=os.getpid(),
        started=process_start(os.getpid()),
        ports=ports,
        flower_url=f"http://127.0.0.1:{ports['flower']}",
        exports=exports,
        secrets=sorted(stack.secrets()),
    )


def deploy_pricefeed(neo: EmbeddedNeo, settings: Settings) -> str:
    """The dev chain's PriceFeed contract, published to by the hot wallet and checking
    reports against the public key of ``NSL_REPORT_KEY`` when one is set; deployed on the
    first start (its hash is the same at every start: same deployer, code and name)."""
    from neosl.neo.addresses import address_to_script_hash
    from neosl.neo.rpc import NeoRpc
    from neosl.pricefeeds.reports import report_key
    from neosl_devstack import contracts, devnet

    nef, manifest = contracts.artefact("pricefeed")
    hot = settings.deposit_address
    publisher = address_to_script_hash(hot) if hot else None
    key = report_key(settings)
    data: devnet.DeployData = publisher if key is None else [publisher, key.public_key]
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        try:
            return devnet.deploy(
                rpc,
                neo.committee_wallet_path,
                neo.committee_wallet_password,
                nef,
                manifest,
                data,
            )
        except devnet.ContractExists as exc:
            return exc.contract_hash


DEMO_OWNER = "operator"
DEMO_FEEDS = ("NEO/USD", "GAS/USD")


def demo_feeds(engine: Engine, settings: Settings) -> list[str]:
    """Public NEO/USD and GAS/USD feeds over every source serving them (USDT markets taken as
    USD), owned by an account named ``operator`` that cannot log in; created once. Returns
    the pairs created."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from neosl.models import PriceFeed, User
    from neosl.pricefeeds import catalog, definitions

    created = []
    with Session(engine) as session:
        owner = session.scalar(select(User.id).where(User.username == DEMO_OWNER))
        if owner is None:
            # "!" is no argon2 hash: no password logs in to this account.
            user = User(
                username=DEMO_OWNER,
                email="operator@localhost",
                password_hash="!",  # noqa: S106 (a refusal, not a password)
            )
            session.add(user)
            session.commit()
            owner = user.id
        for pair in DEMO_FEEDS:
            if session.scalar(
                select(PriceFeed.id).where(PriceFeed.asset_pair == pair, PriceFeed.public)
            ):
                continue
            # USD from USDT too: the demo feeds read every exchange that lists the asset.
            serving = [r.source for r in catalog.serving(session, pair, usdt_as_usd=True)]
            spec = definitions.FeedSpec(
                asset_pair=pair,
                frequency=10,
                sources=serving,
                min_sources=3,
                public=True,
                usdt_as_usd=True,
            )
            definitions.create_feed(session, settings, owner, spec)
            created.append(pair)
    return created


# What the dev stack deposits for the operator once: its public feeds' publications.
OPERATOR_FUNDS = 1000 * 10**8


def fund_operator(neo: EmbeddedNeo, engine: Engine, settings: Settings) -> str | None:
    """The operator pays for publishing its public feeds like any tenant. On the first start
    its default account is the dev chain committee's address (proven: the dev stack holds
    its key), and the committee deposits ``OPERATOR_FUNDS`` to the deposit address, credited
    at once (the chain follower's cursor may start after that block; crediting is idempotent
    if it sees the deposit too). Returns the amount credited, or None when nothing was done.
    """
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from neosl.gas import ledger
    from neosl.gas.money import from_units
    from neosl.models import GasAccount, User
    from neosl.neo.rpc import NeoRpc
    from neosl.neo.transfers import gas_transfers
    from neosl_devstack import devnet

    hot = settings.deposit_address
    if hot is None:
        return None
    committee = devnet.committee_account(neo.committee_wallet_path, neo.committee_wallet_password)
    with Session(engine) as session:
        owner = session.scalar(select(User.id).where(User.username == DEMO_OWNER))
        if owner is None or session.scalar(
            select(GasAccount.id).where(GasAccount.user_id == owner)
        ):
            return None
        session.add(
            GasAccount(
                user_id=owner,
                address=str(committee.address),
                is_default=True,
                verified_at=dt.datetime.now(dt.UTC),
            )
        )
        session.commit()
        with NeoRpc(settings.neo_rpc_urls) as rpc:
            tx_hash = devnet.fund(
                rpc, neo.committee_wallet_path, neo.committee_wallet_password, hot, OPERATOR_FUNDS
            )
            log = rpc.application_log(tx_hash)
            height = rpc.transaction_height(tx_hash)
        # fund() returned once its transaction was in a block.
        assert log is not None
        assert height is not None
        credited = Decimal(0)
        for transfer in gas_transfers(log):
            if transfer.to_address == hot:
                ledger.credit_deposit(
                    session,
                    tx_hash=transfer.tx_hash,
                    notification_index=transfer.notification_index,
                    block_index=height,
                    from_address=transfer.from_address,
                    amount=from_units(transfer.amount),
                )
                credited += from_units(transfer.amount)
        session.commit()
    return str(credited)


# Processes without a metrics port of ours (Flower serves its own).
_NO_METRICS_PORT = ("flower",)


def metrics_dir(root: Path) -> Path:
    """Where the processes add up their children's counts; emptied at each start."""
    folder = root / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def metrics_base(env: dict[str, str]) -> int:
    """``NSL_DEV_METRICS_PORT``: the workers' metrics ports are this + their Procfile line."""
    return int(env.get("NSL_DEV_METRICS_PORT") or DEV_METRICS_PORT)


def process_env(env: dict[str, str], metrics: Path, line: int, name: str) -> dict[str, str]:
    """A Procfile process's own settings: a folder for its processes' counts, and for a
    worker the port of its /metrics and /healthz (``NSL_DEV_METRICS_PORT`` + its line)."""
    own = {"PROMETHEUS_MULTIPROC_DIR": str(metrics / name)}
    if name not in _NO_METRICS_PORT:
        own["NSL_METRICS_PORT"] = str(metrics_base(env) + line)
    return own


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
                f"  Metrics      http://127.0.0.1:{metrics_base(env)}/metrics (the API), the"
                " workers from the next port on (NSL_DEV_METRICS_PORT + the Procfile line),"
                " /metrics and /healthz",
                "  Prices       local demo markets; public feeds NEO/USD, GAS/USD every 10 s",
                "  Ctrl-C stops everything.",
            ]
        ),
        flush=True,
    )


def _chain(args: argparse.Namespace) -> int:
    """Run the dev chain's node alone in the foreground until SIGTERM or SIGINT."""
    from neosl_devstack.neo import EmbeddedNeo, listen_address
    from neosl_devstack.servers import ServerError
    from neosl_devstack.stack import Ports

    ports = Ports.dev(os.environ)
    # By default the dev stack's own node (same folder, same ports), so that `neosl devnet`
    # finds its committee wallet where `neosl-dev up` keeps it.
    datadir = Path(args.chain_dir) if args.chain_dir else Path(args.dir) / "neo"
    node = EmbeddedNeo(
        datadir,
        args.rpc_port if args.rpc_port is not None else ports.neo_rpc,
        args.p2p_port if args.p2p_port is not None else ports.neo_p2p,
        block_ms=args.block_ms,
        host=args.host,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: stop.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        print(f"neosl-dev: starting the Neo N3 node (data in {node.datadir})", flush=True)
        try:
            node.start()
        except ServerError as exc:
            print(f"neosl-dev: {exc}", file=sys.stderr)
            return 1
        try:
            print(
                "\n".join(
                    [
                        f"neosl-dev: Neo N3 RPC {node.url} (listening on "
                        f"{listen_address(node.host, node.rpc_port)}, P2P port {node.p2p_port})",
                        f"  network magic    {node.network_magic}",
                        f"  committee wallet {node.committee_wallet_path} (the faucet of "
                        "`neosl devnet fund`)",
                        f"  node log         {node.log_path}",
                        "  SIGTERM or Ctrl-C stops it.",
                    ]
                ),
                flush=True,
            )
            # Wakes once a second to notice a node that died on its own.
            while not stop.wait(1.0):
                assert node.process is not None
                if node.process.poll() is not None:
                    print(
                        f"neosl-dev: the node exited with code {node.process.returncode}; "
                        f"last log lines:\n{node.tail_log()}",
                        file=sys.stderr,
                    )
                    return 1
            return 0
        finally:
            node.stop()
            print("neosl-dev: stopped", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _env(args: argparse.Namespace) -> int:
    """Print the variables of the dev stack running in the data folder, for
    `eval "$(neosl-dev env)"`: what that stack's ``neosl-dev up`` wrote there, whatever this
    shell's own variables say.

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
    try:
        running = read_running(root)
    except ValueError as exc:
        print(f"neosl-dev: cannot read {root / RUNNING_FILE}: {exc}", file=sys.stderr)
        return 1
    if running is None or not running.is_alive():
        why = (
            ""
            if running is None
            else f" (the one started there, pid {running.pid}, ended without stopping cleanly)"
        )
        print(
            f"neosl-dev: no dev stack is running in {root}{why}; start it with `make dev` "
            "(or pass the --dir of a running one)",
            file=sys.stderr,
        )
        return 1
    stored = read_secrets(root)
    values = {name: stored[name] for name in running.secrets if name in stored}
    values.update(running.exports)
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neosl-dev",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", default=".dev", help="data folder (default: .dev)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system in the foreground")
    up.add_argument("--procfile", default="Procfile")
    up.set_defaults(func=_up)
    env_help = (
        "print shell exports for the dev stack running in the data folder (its URLs, API, "
        "keys); exit 1 when none runs there"
    )
    sub.add_parser("env", help=env_help, description=env_help).set_defaults(func=_env)
    chain_help = "run only the Neo N3 dev chain in the foreground (until SIGTERM or Ctrl-C)"
    chain = sub.add_parser("chain", help=chain_help, description=chain_help)
    chain.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the RPC and P2P ports listen on (default: 127.0.0.1; 0.0.0.0 in a container)",
    )
    chain.add_argument(
        "--rpc-port",
        type=_port,
        help="RPC port (default: NSL_DEV_NEO_RPC_PORT, else 50332)",
    )
    chain.add_argument(
        "--p2p-port",
        type=_port,
        help="P2P port (default: NSL_DEV_NEO_P2P_PORT, else 50333)",
    )
    chain.add_argument(
        "--dir",
        dest="chain_dir",
        metavar="DIR",
        help="the node's data folder: chain, committee wallet, config and log (default: "
        "the dev stack's, neo/ in the top-level --dir)",
    )
    chain.add_argument(
        "--block-ms",
        type=_positive,
        default=1000,
        help="block time in ms; only counts when the chain is created (default: 1000)",
    )
    chain.set_defaults(func=_chain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
