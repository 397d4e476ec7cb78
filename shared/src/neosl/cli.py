"""``neosl``: operator commands (migrations, health checks)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from celery.exceptions import TimeoutError as CeleryTimeout
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import SQLAlchemyError

from neosl import jobs, migrate
from neosl.celery_app import make_celery
from neosl.config import ConfigError, Settings, load_settings
from neosl.db import short_lived_engine


def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    with short_lived_engine(settings) as engine:
        applied = migrate.upgrade(engine, settings.db_dir)
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")
    return 0


def _db_status(settings: Settings, _args: argparse.Namespace) -> int:
    with short_lived_engine(settings) as engine:
        rows = migrate.status(engine, settings.db_dir)
    for version, name, applied in rows:
        print(f"{version}  {'applied' if applied else 'PENDING'}  {name}")
    return 0 if all(applied for _, _, applied in rows) else 1


def _workers_ping(settings: Settings, args: argparse.Namespace) -> int:
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


def _config(settings: Settings, _args: argparse.Namespace) -> int:
    for name, value in settings.describe().items():
        print(f"{name} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neosl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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
    sub.add_parser("config", help="validate the environment and print the settings").set_defaults(
        func=_config
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except (migrate.MigrationError, SQLAlchemyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
