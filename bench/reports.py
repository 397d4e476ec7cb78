"""Signed price reports: ``GET /v1/price-feeds/{id}/report`` next to ``…/latest``.

One client, one keep-alive connection, the API under gunicorn with the Procfile's ``api``
line, embedded PostgreSQL and Redis. A public feed with a signed round is prepared in the
database; the variants alternate request by request, so that both see the same machine:

- ``latest`` with the tenant's key: the newest price and round (the baseline);
- ``report`` with the key: the signed report, charged ``NSL_PRICEFEED_REPORT_FEE`` per read
  (0.00001 GAS here: a ledger write per read);
- ``report`` without a key (a public feed; at most ``--anonymous`` reads, under the API's
  per-address limit).

Prints p50/p99 per variant and the report's p50 over latest's. Exits non-zero only when an
answer is wrong (not 200, or a report whose signature does not verify), never on a timing.

    uv run python bench/reports.py [--requests 600] [--anonymous 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from api_hot_path import (
    BenchError,
    Gunicorn,
    prepare,
    servers,
    tenant_credentials,
)
from sqlalchemy import select
from sqlalchemy.orm import Session
from stats import percentile

from neosl.config import load_settings
from neosl.db import short_lived_engine
from neosl.gas import ledger
from neosl.models import GasAccount, PriceData, PriceFeed, PriceRound, User
from neosl.pricefeeds import reports

REPORT_FEE = "0.00001"


def seed(session: Session, username: str, key: reports.ReportKey) -> int:
    """A funded, proven default account for the tenant and a public feed with one signed
    round; the feed's id."""
    user = session.scalars(select(User).where(User.username == username)).one()
    account = GasAccount(
        user_id=user.id,
        address="NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs",
        is_default=True,
        verified_at=dt.datetime.now(dt.UTC),
    )
    session.add(account)
    session.flush()
    ledger.credit_deposit(
        session,
        tx_hash="0x" + "ab" * 32,
        notification_index=0,
        block_index=0,
        from_address=account.address,
        amount=Decimal(100),
    )
    now = dt.datetime.now(dt.UTC)
    feed = PriceFeed(
        user_id=user.id,
        asset_pair="NEO/USD",
        frequency=60,
        sources=[{"name": "binance"}],
        aggregation="median",
        min_sources=1,
        heartbeat=3600,
        next_round_at=now + dt.timedelta(days=1),
        public=True,
    )
    session.add(feed)
    session.flush()
    data = PriceData(feed_id=feed.id, timestamp=now, price=Decimal("12.5"), sources_used=1)
    session.add(data)
    session.flush()
    row = PriceRound(
        feed_id=feed.id,
        scheduled_at=now,
        started_at=now,
        finished_at=now,
        status="priced",
        price=Decimal("12.5"),
        sources_used=1,
        price_data_id=data.id,
    )
    session.add(row)
    session.flush()
    report = reports.Report.of(feed.id, "NEO/USD", Decimal("12.5"), row.id, 1, 1).to_bytes()
    row.report, row.report_signature = report, key.sign(report)
    row.report_key_id, row.report_public_key = key.id, key.public_key
    session.commit()
    return feed.id


def get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str]
) -> tuple[float, bytes]:
    began = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    took = time.perf_counter() - began
    if response.status != 200:
        raise BenchError(f"GET {path} answered {response.status}: {body[:200]!r}")
    return took, body


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=600, help="requests per keyed variant")
    p.add_argument("--anonymous", type=int, default=100, help="reads without a key (≤ 110)")
    args = p.parse_args(argv)
    if args.requests < 10 or not 1 <= args.anonymous <= 110:
        p.error("--requests must be >= 10 and --anonymous 1-110")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp:
        folder = Path(tmp)
        with servers(folder) as env:
            env = {**env, "NSL_PRICEFEED_REPORT_FEE": REPORT_FEE}
            print(prepare(env))
            api = Gunicorn("api", "neosl_api.app:create_app()", env, folder)
            try:
                api.wait_ready("/healthz")
                api_key, _ = tenant_credentials(api)
                key = reports.ReportKey("bench", b"\x01" * 32)
                with short_lived_engine(load_settings(env)) as engine, Session(engine) as db:
                    feed_id = seed(db, "bench_tenant", key)
                return run(api, api_key, feed_id, key, args)
            finally:
                api.stop()


def run(
    api: Gunicorn, api_key: str, feed_id: int, key: reports.ReportKey, args: argparse.Namespace
) -> int:
    keyed = {"Authorization": f"Bearer {api_key}"}
    variants = {
        "latest, with a key": (f"/v1/price-feeds/{feed_id}/latest", keyed),
        "report, with a key (charged)": (f"/v1/price-feeds/{feed_id}/report", keyed),
        "report, without a key": (f"/v1/price-feeds/{feed_id}/report", {}),
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        for path, headers in variants.values():  # warm-up
            get(conn, path, headers)
        for i in range(args.requests):
            for label, (path, headers) in variants.items():
                if label.endswith("without a key") and i >= args.anonymous:
                    continue
                took, body = get(conn, path, headers)
                times[label].append(took)
                if "report" in path:
                    answer = json.loads(body)
                    signed = bytes.fromhex(answer["report"])
                    if not reports.verify(
                        signed, bytes.fromhex(answer["signature"]), key.public_key
                    ):
                        raise BenchError("a report's signature does not verify")
    finally:
        conn.close()
    print(f"\n{'variant':<32} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for label, samples in times.items():
        ms = [t * 1000 for t in samples]
        print(f"{label:<32} {len(ms):>5} {percentile(ms, 0.5):>8.2f} {percentile(ms, 0.99):>8.2f}")
    base = percentile(times["latest, with a key"], 0.5)
    for label in ("report, with a key (charged)", "report, without a key"):
        print(f"{label} p50 / latest p50: {percentile(times[label], 0.5) / base:.2f}x")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
