"""Signed price reports: the bytes Neo's StdLib reads back, a signature CryptoLib accepts,
written by the worker for every priced round and served by the API."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import NamedKey, Settings
from neosl.functions.sandbox import SandboxPool
from neosl.models import GasAccount, PriceFeed, PriceRound, Transaction
from neosl.neo import binary
from neosl.pricefeeds import reports
from neosl.pricefeeds.reports import Report, ReportError, ReportKey
from neosl_api.app import create_app
from neosl_devstack.markets import FakeMarkets
from tests.chain import Chain
from tests.factories import credit
from tests.gas.test_api import add_account, tenant
from tests.pricefeeds.test_api import created
from tests.pricefeeds.test_rounds import NEO_USD, feed, one_round

STDLIB = "0xacce6fd80d44e1796aa0c2c625e9e4e0ce39efc0"
CRYPTOLIB = "0x726cb6e0cd8628a1350a611384688911ab75f51b"


def new_key() -> ReportKey:
    return ReportKey("test", base64.urlsafe_b64decode(reports.new_report_key().split(":")[1]))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, ""),
        (1, "01"),
        (-1, "ff"),
        (127, "7f"),
        (128, "8000"),
        (255, "ff00"),
        (-128, "80"),
        (-129, "7fff"),
        (1765000000123, "7bb232f29a01"),
    ],
)
def test_integers_are_written_as_neo_writes_them(value: int, encoded: str) -> None:
    assert binary.integer_bytes(value).hex() == encoded
    assert binary.loads(binary.dumps(value)) == value


def test_a_report_reads_back_and_refuses_other_bytes() -> None:
    report = Report.of(7, "FLM/USD", Decimal("0.0123456789"), 42, 1765000000123, 3)
    assert report.price == 1234567  # floor to 8 decimals
    assert Report.from_bytes(report.to_bytes()) == report
    for bad in (b"", report.to_bytes()[:-1], report.to_bytes() + b"\x00", binary.dumps([2, 1])):
        with pytest.raises(ReportError):
            Report.from_bytes(bad)


def test_a_signature_verifies_for_its_key_and_bytes_only() -> None:
    key, other = new_key(), new_key()
    data = Report.of(1, "NEO/USD", Decimal("12.5"), 1, 1, 4).to_bytes()
    signature = key.sign(data)
    assert reports.verify(data, signature, key.public_key)
    assert not reports.verify(data, signature, other.public_key)
    assert not reports.verify(data[:-1] + b"\x05", signature, key.public_key)
    assert not reports.verify(data, signature[:-1], key.public_key)


@pytest.mark.neo
def test_neo_reads_the_report_and_accepts_its_signature(chain: Chain) -> None:
    """StdLib.deserialize gives the fields back; CryptoLib.verifyWithECDsa (curve hash 23)
    accepts the signature and refuses it over altered bytes."""
    key = new_key()
    report = Report.of(42, "FLM/USD", Decimal("0.01234567891"), 77, 1765000000123, 3)
    data = report.to_bytes()

    def arg(raw: bytes) -> dict[str, Any]:
        return {"type": "ByteArray", "value": base64.b64encode(raw).decode()}

    read = chain.rpc.invoke_function(STDLIB, "deserialize", [arg(data)])
    assert read["state"] == "HALT", read.get("exception")
    (item,) = read["stack"]
    assert [v["value"] for v in item["value"]] == [
        "1",
        "42",
        base64.b64encode(b"FLM/USD").decode(),
        "1234567",
        "8",
        "77",
        "1765000000123",
        "3",
    ]
    signature = key.sign(data)
    for message, expected in ((data, True), (data[:-1] + b"\x04", False)):
        checked = chain.rpc.invoke_function(
            CRYPTOLIB,
            "verifyWithECDsa",
            [arg(message), arg(key.public_key), arg(signature), {"type": "Integer", "value": "23"}],
        )
        assert checked["state"] == "HALT", checked.get("exception")
        assert checked["stack"][0]["value"] is expected


def test_the_worker_signs_every_priced_round(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
) -> None:
    key = new_key()
    signing = dataclasses.replace(pointed, report_key=NamedKey(key.id, key.private))
    for name, price in zip(NEO_USD, ("12.30", "12.31", "12.29", "12.32"), strict=True):
        markets.set_price(name, NEO_USD[name], price)
    feed_id = feed(sessions, list(NEO_USD))
    done = one_round(sessions, signing, producer)
    assert done.status == "priced"
    assert done.report is not None
    assert done.report_signature is not None
    assert (done.report_key_id, done.report_public_key) == (key.id, key.public_key)
    assert reports.verify(done.report, done.report_signature, key.public_key)
    report = Report.from_bytes(done.report)
    assert done.price is not None
    assert (report.feed_id, report.pair, report.round_id) == (feed_id, "NEO/USD", done.id)
    assert Decimal(report.price) / 10**report.decimals == done.price
    assert report.sources_used == done.sources_used


def signed_round(db: Session, feed_id: int, key: ReportKey, price: str = "12.5") -> PriceRound:
    now = dt.datetime.now(dt.UTC)
    row = PriceRound(
        feed_id=feed_id, scheduled_at=now, started_at=now, finished_at=now, status="priced"
    )
    db.add(row)
    db.flush()
    data = Report.of(feed_id, "NEO/USD", Decimal(price), row.id, 1, 3).to_bytes()
    row.price = Decimal(price)
    row.report, row.report_signature = data, key.sign(data)
    row.report_key_id, row.report_public_key = key.id, key.public_key
    db.commit()
    return row


@pytest.fixture
def priced_app(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> FlaskClient:
    """The API with a report read costing 0.001 GAS."""
    charged = dataclasses.replace(settings, pricefeed_report_fee=Decimal("0.001"))
    return create_app(
        charged, session_factory=session_factory, redis=redis_client, sandbox=sandbox
    ).test_client()


def test_a_tenant_reads_its_feeds_report_and_pays_for_it(
    priced_app: FlaskClient, db: Session
) -> None:
    h = tenant(priced_app)
    account = add_account(priced_app, h)
    credit(db, db.get_one(GasAccount, account["id"]), "1")
    db.commit()
    fed = created(priced_app, h)
    key = new_key()
    assert priced_app.get(f"/v1/price-feeds/{fed['id']}/report", headers=h).status_code == 404
    row = signed_round(db, fed["id"], key)
    answer = priced_app.get(f"/v1/price-feeds/{fed['id']}/report", headers=h)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["feed_id"], body["pair"], body["round_id"]) == (fed["id"], "NEO/USD", row.id)
    assert (body["price"], body["decimals"], body["key_id"]) == ("1250000000", 8, "test")
    assert reports.verify(
        bytes.fromhex(body["report"]), bytes.fromhex(body["signature"]), key.public_key
    )
    assert body["public_key"] == key.public_key.hex()
    charges = db.scalars(
        select(Transaction.amount).where(Transaction.reference.like(f"report:{row.id}:%"))
    ).all()
    assert charges == [Decimal("0.001")]
    # Another tenant does not see it; without a key, a private feed's report is 401.
    other = tenant(priced_app, "bob")
    assert priced_app.get(f"/v1/price-feeds/{fed['id']}/report", headers=other).status_code == 404
    assert priced_app.get(f"/v1/price-feeds/{fed['id']}/report").status_code == 401


def test_a_tenant_who_cannot_pay_gets_no_report(priced_app: FlaskClient, db: Session) -> None:
    h = tenant(priced_app)
    fed = created(priced_app, h)
    signed_round(db, fed["id"], new_key())
    # No gas account to pay from.
    answer = priced_app.get(f"/v1/price-feeds/{fed['id']}/report", headers=h)
    assert answer.status_code == 402


def test_a_public_feeds_report_is_read_without_a_key_for_free(
    priced_app: FlaskClient, db: Session
) -> None:
    h = tenant(priced_app)
    fed = created(priced_app, h)
    db.execute(update(PriceFeed).where(PriceFeed.id == fed["id"]).values(public=True))
    signed_round(db, fed["id"], new_key())
    before = db.scalar(select(func.count()).select_from(Transaction))
    answer = priced_app.get(f"/v1/price-feeds/{fed['id']}/report")
    assert answer.status_code == 200, answer.get_json()
    assert db.scalar(select(func.count()).select_from(Transaction)) == before
    # A bad key is still refused, not read as none.
    bad = {"Authorization": "Bearer nsl_not-a-key"}
    assert priced_app.get(f"/v1/price-feeds/{fed['id']}/report", headers=bad).status_code == 401
