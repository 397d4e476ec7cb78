"""``neosl``: operator commands: database, workers, ledger, chain, deposits, secrets, feeds.

Other installed packages add commands through the ``neosl.commands`` entry point group: a
callable given the subcommands to add to (the dev stack adds ``devnet``).

Each command imports what it needs when it runs. Building the parser (and so ``--help``)
imports no SQLAlchemy, Celery, neo-mamba, httpx or cryptography. Together they take seconds to
import on a small machine, and most commands need one or two of them. A command added through the
entry point group follows the same rule: loading it must stay cheap.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from neosl import jobs
from neosl.config import ConfigError, load_settings
from neosl.errors import ServiceError
from neosl.gas.money import format_amount
from neosl_cli import localrun

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from neosl.config import Settings

COMMANDS_GROUP = "neosl.commands"


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """A session on a one-connection engine, for a command that runs and exits."""
    from sqlalchemy.orm import Session

    from neosl.db import short_lived_engine

    with short_lived_engine(settings) as engine, Session(engine) as session:
        yield session


def _database_errors() -> tuple[type[Exception], ...]:
    """Errors of a command's database work, told in one line (imported only on a failure)."""
    from sqlalchemy.exc import SQLAlchemyError

    from neosl.migrate import MigrationError

    return (MigrationError, SQLAlchemyError)


def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from neosl import migrate
    from neosl.db import short_lived_engine

    with short_lived_engine(settings) as engine:
        applied = migrate.upgrade(engine, settings.db_dir)
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")
    return 0


def _db_status(settings: Settings, _args: argparse.Namespace) -> int:
    from neosl import migrate
    from neosl.db import short_lived_engine

    with short_lived_engine(settings) as engine:
        rows = migrate.status(engine, settings.db_dir)
    for version, name, applied in rows:
        print(f"{version}  {'applied' if applied else 'PENDING'}  {name}")
    return 0 if all(applied for _, _, applied in rows) else 1


def _workers_ping(settings: Settings, args: argparse.Namespace) -> int:
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError as KombuOperationalError

    from neosl.celery_app import make_celery

    app = make_celery(settings, "neosl-cli")
    unknown = set(args.queues) - set(jobs.ALL_QUEUES)
    if unknown:
        print(f"unknown queue(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    failed = 0
    for queue in args.queues or jobs.ALL_QUEUES:
        job = jobs.PING_JOBS[queue]
        try:
            reply = app.send_task(job.name, queue=job.queue).get(timeout=args.timeout)
            print(f"{queue}: ok ({reply['host']} pid {reply['pid']})")
        except (CeleryTimeout, KombuOperationalError) as exc:
            failed += 1
            print(f"{queue}: no answer ({type(exc).__name__})")
    return 1 if failed else 0


def _ledger_verify(settings: Settings, _args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from neosl.gas import ledger
    from neosl.models import GasAccount

    with _session(settings) as session:
        mismatches = ledger.verify(session)
        accounts = session.scalar(select(func.count()).select_from(GasAccount))
    for m in mismatches:
        print(
            f"account {m.account_id}: balance {format_amount(m.balance)} != "
            f"sum of transactions {format_amount(m.expected)}"
        )
    print(f"{accounts} accounts checked, {len(mismatches)} mismatched")
    return 1 if mismatches else 0


def _chain_rescan(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.celery_app import make_celery
    from neosl.db import make_session_factory, short_lived_engine
    from neosl.dispatch import Dispatcher
    from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
    from neosl.onchain import blocks

    subs = blocks.subscriptions(settings)
    producer = make_celery(settings, "neosl-cli")
    with short_lived_engine(settings) as engine, NeoRpc(settings.neo_rpc_urls) as rpc:
        sessions = make_session_factory(engine)
        try:
            result = blocks.rescan(sessions, rpc, subs, Dispatcher(producer), args.first, args.last)
        except (ValueError, RpcError, RpcUnavailable, blocks.MissingApplicationLog) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(
        f"rescanned blocks {result.first}..{result.last}: {result.found} matching "
        f"notification(s), {result.new} new"
    )
    return 0


def _chain_subscriptions(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.onchain import deployment

    with _session(settings) as session:
        if args.forget:
            if not deployment.forget_followed(session, args.forget):
                print(f"error: no recorded subscription {args.forget!r}", file=sys.stderr)
                return 1
            session.commit()
            print(f"forgot {args.forget}; the next follower to start records its own")
            return 0
        for name, target in sorted(deployment.followed(session).items()):
            print(f"{name}  {target}")
    return 0


def _deposits_unmatched(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from neosl.models import UnmatchedDeposit

    with _session(settings) as session:
        stmt = select(UnmatchedDeposit).order_by(UnmatchedDeposit.id)
        if not args.all:
            stmt = stmt.where(UnmatchedDeposit.credited_transaction_id.is_(None))
        for row in session.scalars(stmt):
            credited = (
                f"  credited as transaction {row.credited_transaction_id}"
                if row.credited_transaction_id
                else ""
            )
            print(
                f"{row.id}  {format_amount(row.amount)} GAS from {row.from_address or '-'}  "
                f"{row.reason}  block {row.block_index}  {row.tx_hash}"
                f"#{row.notification_index}{credited}"
            )
    return 0


def _deposits_credit(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.gas import ledger

    with _session(settings) as session:
        try:
            transaction_id = ledger.credit_unmatched(session, args.unmatched_id, args.account)
        except ServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        session.commit()
    print(f"credited unmatched deposit {args.unmatched_id} as transaction {transaction_id}")
    return 0


def _secrets_rotate_master_key(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.functions import secretbox

    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    keys = settings.require_secrets_keys()
    current = keys[0].id
    with _session(settings) as session:
        result = secretbox.rotate_master_key(session, keys, batch_size=args.batch_size)
    print(
        f"re-wrapped {result.rewrapped} secret(s) under master key {current!r}; "
        f"{result.remaining} remain under other master keys"
    )
    for key_id, count in result.unknown_keys.items():
        print(
            f"error: {count} secret(s) are wrapped by master key {key_id!r}, which "
            "NSL_SECRETS_KEY does not configure; they were left as they are. Add that key "
            "to NSL_SECRETS_KEY (after the first one) and run this again.",
            file=sys.stderr,
        )
    for row in result.unreadable:
        print(f"error: left secret row {row.secret_id} as it is: {row.reason}", file=sys.stderr)
    if result.remaining and not result.unknown_keys and not result.unreadable:
        print(
            "error: secrets were written under an old master key during the run; make sure "
            f"every process has {current!r} first in NSL_SECRETS_KEY, then run this again",
            file=sys.stderr,
        )
    return 1 if result.remaining else 0


def _feeds_create(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from neosl.models import User
    from neosl.pricefeeds import definitions

    spec = definitions.FeedSpec(
        asset_pair=args.pair,
        frequency=args.frequency,
        sources=[name.strip() for name in args.sources.split(",") if name.strip()],
        aggregation=args.aggregation,
        deviation=args.deviation,
        heartbeat=args.heartbeat,
        min_sources=args.min_sources,
        public=args.public,
        usdt_as_usd=args.usdt_as_usd,
    )
    with _session(settings) as session:
        owner = session.scalar(select(User.id).where(User.username == args.owner))
        if owner is None:
            print(f"error: no account named {args.owner!r}", file=sys.stderr)
            return 1
        try:
            feed = definitions.create_feed(session, settings, owner, spec)
        except ServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        kind = "public" if feed.public else "private"
        print(f"created {kind} price feed {feed.id}: {feed.asset_pair} every {feed.frequency} s")
    return 0


def _feeds_list(settings: Settings, _args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from neosl.models import PriceFeed

    with _session(settings) as session:
        for feed in session.scalars(select(PriceFeed).order_by(PriceFeed.id)):
            names = ",".join(s["name"] for s in feed.sources)
            print(
                f"{feed.id}\t{feed.asset_pair}\t{'public' if feed.public else 'private'}\t"
                f"{feed.status}\tevery {feed.frequency} s\t{names}"
            )
    return 0


def _report_keygen(_args: argparse.Namespace) -> int:
    from neosl.pricefeeds import reports

    value = reports.new_report_key()
    key_id, _, encoded = value.partition(":")
    public = reports.ReportKey(key_id, base64.urlsafe_b64decode(encoded)).public_key
    print(f"NSL_REPORT_KEY={value}")
    print(
        f"Give it to the pricefeed worker only (from a secret store). Its public key, for the "
        f"contracts that verify reports: {public.hex()}",
        file=sys.stderr,
    )
    return 0


def _report_key(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
    from neosl.pricefeeds import reports
    from neosl_cli import reportkey

    key = reports.report_key(settings)
    if key is None:
        print("error: NSL_REPORT_KEY is not set: rounds are not signed", file=sys.stderr)
        return 2
    contract = settings.pricefeed_contract
    if contract is None:
        print("error: NSL_PRICEFEED_CONTRACT is not set", file=sys.stderr)
        return 2
    print(f"NSL_REPORT_KEY {key.id}: {key.public_key.hex()}")
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        try:
            held = reportkey.contract_key(rpc, contract)
            print(f"PriceFeed {contract}: {held.hex() or 'no key'}")
            if held == key.public_key:
                print("the contract checks reports against this key")
                return 0
            if not args.publish:
                print(
                    "the contract checks reports against another key: "
                    "run again with --publish (signed by NSL_HOT_WALLET_WIF, the publisher)",
                    file=sys.stderr,
                )
                return 1
            if settings.hot_wallet_wif is None:
                print("error: --publish needs NSL_HOT_WALLET_WIF (the publisher)", file=sys.stderr)
                return 2
            done = reportkey.publish(rpc, contract, settings.hot_wallet_wif, key.public_key)
            if reportkey.contract_key(rpc, contract) != key.public_key:
                print(
                    f"error: {done.tx_hash} HALTed but the key reads back otherwise",
                    file=sys.stderr,
                )
                return 1
        except (reportkey.PublishError, RpcError, RpcUnavailable, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"published in {done.tx_hash}: the contract checks reports against this key")
    return 0


def _relay_keygen(_args: argparse.Namespace) -> int:
    from neosl.onchain import relaybox

    private, public = relaybox.new_relay_key()
    print(f"NSL_RELAY_KEY=relay1:{private}")
    print(f"NSL_RELAY_PUBLIC_KEY=relay1:{public}")
    print(
        "Give NSL_RELAY_KEY to the gasbank only (from a secret store); the API needs "
        "NSL_RELAY_PUBLIC_KEY.",
        file=sys.stderr,
    )
    return 0


def _config(settings: Settings, _args: argparse.Namespace) -> int:
    from neosl.gas import bank
    from neosl.onchain import relaybox

    # What processes check when they start, beyond reading the variables.
    bank.deposit_address(settings)
    relaybox.relay_public_key(settings)
    for name, value in settings.describe().items():
        print(f"{name} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neosl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    localrun.add_parser(sub)
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply db/schema.sql and pending migrations").set_defaults(
        func=_db_upgrade
    )
    db.add_parser("status", help="list migrations; exit 1 if any is pending").set_defaults(
        func=_db_status
    )
    workers = sub.add_parser("workers", help="worker services").add_subparsers(
        dest="action", required=True
    )
    ping = workers.add_parser("ping", help="send each worker service a ping task")
    ping.add_argument("queues", nargs="*", metavar="QUEUE", help=", ".join(jobs.ALL_QUEUES))
    ping.add_argument("--timeout", type=float, default=10.0)
    ping.set_defaults(func=_workers_ping)
    ledger_cmd = sub.add_parser("ledger", help="the GAS ledger").add_subparsers(
        dest="action", required=True
    )
    ledger_cmd.add_parser(
        "verify", help="check every balance against its transactions; exit 1 on any mismatch"
    ).set_defaults(func=_ledger_verify)
    chain_cmd = sub.add_parser("chain", help="the chain follower").add_subparsers(
        dest="action", required=True
    )
    rescan = chain_cmd.add_parser(
        "rescan",
        help="read a range of blocks again for every subscription (idempotent; also "
        "backfills history from before the follower started)",
    )
    rescan.add_argument("--from", dest="first", type=int, required=True, metavar="BLOCK")
    rescan.add_argument(
        "--to", dest="last", type=int, default=None, metavar="BLOCK", help="default: the newest"
    )
    rescan.set_defaults(func=_chain_rescan)
    subs_cmd = chain_cmd.add_parser(
        "subscriptions", help="what this deployment's follower records (and for whom)"
    )
    subs_cmd.add_argument(
        "--forget", metavar="NAME", help="drop a recorded subscription (after a deliberate change)"
    )
    subs_cmd.set_defaults(func=_chain_subscriptions)
    deposits_cmd = sub.add_parser(
        "deposits", help="deposits that could not be credited automatically"
    ).add_subparsers(dest="action", required=True)
    unmatched = deposits_cmd.add_parser(
        "unmatched", help="list deposits from unregistered or unproven addresses"
    )
    unmatched.add_argument("--all", action="store_true", help="include those credited since")
    unmatched.set_defaults(func=_deposits_unmatched)
    credit = deposits_cmd.add_parser("credit", help="credit an unmatched deposit to an account")
    credit.add_argument("unmatched_id", type=int, metavar="UNMATCHED_ID")
    credit.add_argument("--account", type=int, required=True, metavar="ACCOUNT_ID")
    credit.set_defaults(func=_deposits_credit)
    for command in entry_points(group=COMMANDS_GROUP):
        command.load()(sub)
    secrets_cmd = sub.add_parser("secrets", help="tenant secrets").add_subparsers(
        dest="action", required=True
    )
    rotate_key = secrets_cmd.add_parser(
        "rotate-master-key",
        help="re-wrap every secret's data key under the first key of NSL_SECRETS_KEY "
        "(idempotent; safe to interrupt and run again); exit 1 unless none remain under "
        "other keys",
    )
    rotate_key.add_argument(
        "--batch-size", type=int, default=200, help="rows per transaction (default 200)"
    )
    rotate_key.set_defaults(func=_secrets_rotate_master_key)
    neo_cmd = sub.add_parser("neo", help="on-chain actions").add_subparsers(
        dest="action", required=True
    )
    neo_cmd.add_parser(
        "relay-keygen", help="a new relay key pair (NSL_RELAY_KEY, NSL_RELAY_PUBLIC_KEY)"
    ).set_defaults(standalone=_relay_keygen)
    feeds_cmd = sub.add_parser("feeds", help="price feeds").add_subparsers(
        dest="action", required=True
    )
    create_feed = feeds_cmd.add_parser(
        "create", help="create a price feed owned by an account (--public: every tenant's)"
    )
    create_feed.add_argument("--owner", required=True, metavar="USERNAME")
    create_feed.add_argument("--pair", required=True, metavar="BASE/QUOTE")
    create_feed.add_argument("--frequency", type=int, required=True, metavar="SECONDS")
    create_feed.add_argument("--sources", required=True, metavar="NAME,NAME,…")
    create_feed.add_argument("--aggregation", default="median")
    create_feed.add_argument("--deviation", type=Decimal, default=Decimal("0.5"))
    create_feed.add_argument("--heartbeat", type=int, default=None, metavar="SECONDS")
    create_feed.add_argument("--min-sources", type=int, default=1)
    create_feed.add_argument("--public", action="store_true")
    create_feed.add_argument(
        "--usdt-as-usd",
        action="store_true",
        help="a USD pair may read a source's USDT market where it has no USD one",
    )
    create_feed.set_defaults(func=_feeds_create)
    feeds_cmd.add_parser("list", help="every price feed").set_defaults(func=_feeds_list)
    feeds_cmd.add_parser(
        "report-keygen", help="a new key that signs price reports (NSL_REPORT_KEY)"
    ).set_defaults(standalone=_report_keygen)
    report_key = feeds_cmd.add_parser(
        "report-key",
        help="the report key and the one the PriceFeed contract checks (exit 1 if they differ)",
    )
    report_key.add_argument(
        "--publish",
        action="store_true",
        help="set NSL_REPORT_KEY's public key on the contract, signed by the publisher",
    )
    report_key.set_defaults(func=_report_key)
    sub.add_parser("config", help="validate the environment and print the settings").set_defaults(
        func=_config
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "standalone", None) is not None:
        # Commands that need no servers (and so no configuration).
        return int(args.standalone(args))
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        if not os.environ.get("DATABASE_URL"):
            print(
                'hint: for the dev stack, run `eval "$(neosl-dev env)"` in the repository first',
                file=sys.stderr,
            )
        return 2
    try:
        return int(args.func(settings, args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # Evaluated only when an exception gets here, so a command that succeeds without the
    # database never imports SQLAlchemy.
    except _database_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
