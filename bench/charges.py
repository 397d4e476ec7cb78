"""Throughput of ``ledger.charge`` against the raw SQL it replaces, on the same PostgreSQL.

Four runs per round, with ledger and raw SQL alternating which goes first so that drift
(table growth, a noisy neighbour) hits both alike; the table shows the median of the rounds:

* ledger charge, one hot account: every thread charges the same tenant.
* raw SQL, one hot account: ``UPDATE gas_accounts`` + ``INSERT INTO transactions`` + COMMIT,
  with no balance check and no idempotency, on the same account.
* the same two with each operation picking a random tenant out of ``--accounts``.

Uses ``DATABASE_URL`` if set (its database name must contain "bench": the script wipes it),
otherwise a durable embedded PostgreSQL in a temporary folder. Exits non-zero only on a
correctness failure (a refused charge, a row count that does not add up, a ``verify``
mismatch), never because of a timing.

    uv run python bench/charges.py [--seconds 5] [--threads 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from neosl import migrate
from neosl.gas import ledger
from neosl.models import GasAccount, Transaction, User
from neosl_devstack.postgres import EmbeddedPostgres
from neosl_devstack.servers import free_port

AMOUNT = Decimal("0.001")
# Enough for far more charges than any run can make, so no charge is ever refused.
FUNDING = Decimal("1000000")
GOAL = 0.5  # the ledger should reach at least half the raw throughput
CHARGE_TYPE = "function"

_RAW_DEBIT = text("UPDATE gas_accounts SET balance = balance - :amount WHERE id = :account_id")
_RAW_INSERT = text(
    "INSERT INTO transactions (user_id, account_id, type, amount, status, reference)"
    " VALUES (:user_id, :account_id, :type, :amount, 'confirmed', :reference)"
)


class BenchError(RuntimeError):
    """A correctness check failed; the figures cannot be trusted."""


@dataclass(frozen=True)
class Tenant:
    user_id: int
    account_id: int


@dataclass(frozen=True)
class Scenario:
    label: str
    tenants: Sequence[Tenant]


@dataclass(frozen=True)
class Measurement:
    ops: int
    refused: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


class ChargeWorker:
    """One thread's client: it owns whatever it opens."""

    def charge(self, tenant: Tenant, reference: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LedgerWorker(ChargeWorker):
    # One session per thread, reused: a service's unit of work would do the same per task.
    def __init__(self, engine: Engine, factory: sessionmaker[Session]) -> None:
        self.session = factory()

    def charge(self, tenant: Tenant, reference: str) -> bool:
        result = ledger.charge(self.session, tenant.user_id, CHARGE_TYPE, AMOUNT, reference)
        # The caller commits (the rules never do); a refusal wrote nothing.
        self.session.commit()
        return result.status is ledger.ChargeStatus.CHARGED

    def close(self) -> None:
        self.session.close()


class RawWorker(ChargeWorker):
    def __init__(self, engine: Engine, factory: sessionmaker[Session]) -> None:
        self.engine = engine

    def charge(self, tenant: Tenant, reference: str) -> bool:
        params = {
            "user_id": tenant.user_id,
            "account_id": tenant.account_id,
            "type": CHARGE_TYPE,
            "amount": AMOUNT,
            "reference": reference,
        }
        with self.engine.begin() as conn:
            debited = conn.execute(_RAW_DEBIT, params).rowcount
            conn.execute(_RAW_INSERT, params)
        return debited == 1


VARIANTS: dict[str, Callable[[Engine, sessionmaker[Session]], ChargeWorker]] = {
    "ledger": LedgerWorker,
    "raw": RawWorker,
}


class Runner:
    def __init__(self, engine: Engine, threads: int) -> None:
        self.engine = engine
        self.factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.threads = threads
        self._runs = 0

    def run(self, variant: str, tenants: Sequence[Tenant], seconds: float) -> Measurement:
        """Run ``self.threads`` threads charging for ``seconds``; count what they did.

        Raises:
            BenchError: a thread raised (its exception is chained).
        """
        self._runs += 1
        tag = f"{variant[0]}{self._runs}"
        make_worker = VARIANTS[variant]
        start = threading.Barrier(self.threads + 1)
        stop = threading.Event()
        counts = [(0, 0)] * self.threads
        errors: list[BaseException] = []

        def work(index: int) -> None:
            rng = random.Random(f"{tag}-{index}")
            worker: ChargeWorker | None = None
            ops = refused = 0
            try:
                start.wait()
                worker = make_worker(self.engine, self.factory)
                while not stop.is_set():
                    tenant = tenants[0] if len(tenants) == 1 else rng.choice(tenants)
                    if not worker.charge(tenant, f"{tag}-{index}-{ops}"):
                        refused += 1
                    ops += 1
            except BaseException as exc:  # reported by the main thread below
                errors.append(exc)
                stop.set()
            finally:
                if worker is not None:
                    worker.close()
                counts[index] = (ops, refused)

        pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(self.threads)]
        for t in pool:
            t.start()
        start.wait()
        began = time.perf_counter()
        stop.wait(seconds)
        stop.set()
        for t in pool:
            t.join()
        # In-flight charges finish after the stop and are counted, so is their time.
        elapsed = time.perf_counter() - began
        if errors:
            raise BenchError(f"{variant}: a thread failed: {errors[0]!r}") from errors[0]
        return Measurement(sum(c[0] for c in counts), sum(c[1] for c in counts), elapsed)


@contextmanager
def database() -> Iterator[tuple[str, str]]:
    """Yield (SQLAlchemy URL, description of where it runs).

    Raises:
        SystemExit: (code 2) DATABASE_URL names a database without "bench" in its name.
    """
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        url = make_url(env_url)
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
        if "bench" not in (url.database or ""):
            print(
                f"refusing to wipe database {url.database!r}: its name must contain 'bench'",
                file=sys.stderr,
            )
            raise SystemExit(2)
        yield (
            url.render_as_string(hide_password=False),
            f"DATABASE_URL ({url.host}:{url.port or 5432}/{url.database})",
        )
        return
    with tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp:
        # The embedded server runs as an unprivileged user when we are root; it must be
        # able to reach its folder.
        Path(tmp).chmod(0o755)
        server = EmbeddedPostgres(Path(tmp) / "postgres", free_port(), durable=True)
        server.start()
        try:
            yield server.ensure_database("neosl_bench"), "embedded, durable (fsync on)"
        finally:
            server.stop()


def prepare(engine: Engine, accounts: int) -> tuple[Tenant, list[Tenant]]:
    """Empty the database, migrate it, create the hot tenant and ``accounts`` others.

    Each account is funded by a confirmed deposit row, so ``ledger.verify`` holds.
    """
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    n = accounts + 1
    with Session(engine) as session:
        user_ids = session.scalars(
            insert(User).returning(User.id, sort_by_parameter_order=True),
            [
                {
                    "username": f"bench_{i}",
                    "email": f"bench_{i}@example.com",
                    "password_hash": "-",
                }
                for i in range(n)
            ],
        ).all()
        account_ids = session.scalars(
            insert(GasAccount).returning(GasAccount.id, sort_by_parameter_order=True),
            [
                {
                    "user_id": uid,
                    "address": f"bench-{i}",
                    "balance": FUNDING,
                    "is_default": True,
                }
                for i, uid in enumerate(user_ids)
            ],
        ).all()
        session.execute(
            insert(Transaction),
            [
                {
                    "user_id": uid,
                    "account_id": aid,
                    "type": "deposit",
                    "amount": FUNDING,
                    "status": "confirmed",
                    "tx_hash": f"0x{i:064x}",
                    "notification_index": 0,
                    "block_index": 0,
                }
                for i, (uid, aid) in enumerate(zip(user_ids, account_ids, strict=True))
            ],
        )
        session.commit()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    tenants = [Tenant(u, a) for u, a in zip(user_ids, account_ids, strict=True)]
    return tenants[0], tenants[1:]


def server_facts(engine: Engine) -> str:
    with engine.connect() as conn:
        version = conn.scalar(text("SHOW server_version"))
        fsync = conn.scalar(text("SHOW fsync"))
        sync = conn.scalar(text("SHOW synchronous_commit"))
    return f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={sync})"


def check(engine: Engine, expected_rows: int, refused: int) -> list[str]:
    """Correctness failures, as messages; empty when all is well."""
    failures: list[str] = []
    if refused:
        failures.append(f"{refused} charges were not charged")
    with Session(engine) as session:
        found = session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.type == CHARGE_TYPE)
        )
        mismatches = ledger.verify(session)
    print(f"charges not charged: {refused}")
    print(f"charge rows: {found} (expected {expected_rows})")
    print(f"ledger.verify mismatches: {len(mismatches)}")
    if found != expected_rows:
        failures.append(f"{found} charge rows where {expected_rows} were expected")
    if mismatches:
        failures.append(f"{len(mismatches)} accounts fail verify, e.g. {mismatches[0]}")
    return failures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each timed run")
    p.add_argument("--threads", type=int, default=8, help="concurrent clients")
    p.add_argument("--rounds", type=int, default=3, help="timed runs per variant and scenario")
    p.add_argument("--accounts", type=int, default=1000, help="tenants in the spread scenario")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed run before each scenario")
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.accounts < 1 or args.seconds <= 0:
        p.error("--threads, --rounds and --accounts must be >= 1 and --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with database() as (url, where):
        engine = create_engine(url, pool_size=args.threads, max_overflow=0)
        try:
            return bench(engine, where, args)
        finally:
            engine.dispose()


def bench(engine: Engine, where: str, args: argparse.Namespace) -> int:
    hot, spread = prepare(engine, args.accounts)
    scenarios = [
        Scenario("one hot account", [hot]),
        Scenario(f"{args.accounts:,} accounts", spread),
    ]
    runner = Runner(engine, args.threads)
    rates: dict[tuple[str, str], list[float]] = {}
    rows = refused = 0

    def record(variant: str, m: Measurement) -> None:
        nonlocal rows, refused
        # A refused ledger charge writes nothing; raw SQL inserts its row regardless.
        rows += m.ops - m.refused if variant == "ledger" else m.ops
        refused += m.refused

    print(
        f"threads={args.threads} seconds={args.seconds:g} rounds={args.rounds} "
        f"accounts={args.accounts:,} warmup={args.warmup:g}s amount={AMOUNT} GAS"
    )
    print(f"database: {where}; {server_facts(engine)}; {os.cpu_count()} CPUs")
    print()
    for scenario in scenarios:
        if args.warmup > 0:
            for variant in VARIANTS:
                record(variant, runner.run(variant, scenario.tenants, args.warmup))
        for r in range(args.rounds):
            # Alternate who goes first so a steady drift does not favour either.
            order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
            line = []
            for variant in order:
                m = runner.run(variant, scenario.tenants, args.seconds)
                record(variant, m)
                rates.setdefault((scenario.label, variant), []).append(m.rate)
                line.append(f"{variant} {m.rate:,.0f}")
            print(f"  {scenario.label}, round {r + 1}: {', '.join(line)} ops/s")
    print()
    print(f"{'scenario':<20}{'ledger ops/s':>14}{'raw SQL ops/s':>16}{'ratio':>9}   goal >= 50 %")
    for scenario in scenarios:
        led = statistics.median(rates[(scenario.label, "ledger")])
        raw = statistics.median(rates[(scenario.label, "raw")])
        ratio = led / raw
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"{scenario.label:<20}{led:>14,.0f}{raw:>16,.0f}{ratio * 100:>7.0f} %   {verdict}")
    print("(medians of the rounds; ratio = ledger / raw SQL)")
    print()
    failures = check(engine, rows, refused)
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
