"""The SDK against the real API (in-process, through httpx's WSGI transport, on the test
database): typed calls, paginated iterators, errors with the API's codes, retries that
never do the work twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neosl.models import Execution, GasAccount, Transaction
from neosl_client import Client, errors
from neosl_client.wallet import WalletKey
from tests import factories

PASSWORD = "correct horse battery"
HELLO = "function main(input, ctx) { return {hello: input && input.name}; }"


class Faults(httpx.BaseTransport):
    """The real API behind a network that misbehaves on purpose: ``plan`` says, call by
    call, ``"pass"``, ``"lose-answer"`` (the API does the work, the answer never arrives),
    ``"refuse"`` (never connects) or ``"429"`` (answered 429 with Retry-After 0, nothing
    done)."""

    def __init__(self, app: Flask) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.plan: list[str] = []
        self.seen: list[httpx.Request] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append(request)
            step = self.plan.pop(0) if self.plan else "pass"
        if step == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if step == "429":
            return httpx.Response(
                429,
                json={"error": {"code": "rate_limited", "message": "slow down"}},
                headers={"Retry-After": "0"},
                request=request,
            )
        response = self.inner.handle_request(request)
        if step == "lose-answer":
            response.read()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


@pytest.fixture
def faults(app: Flask) -> Faults:
    return Faults(app)


@pytest.fixture
def nsl(faults: Faults) -> Iterator[Client]:
    """A registered tenant's client; retries without pauses."""
    with Client("http://api.test", transport=faults, retries=2) as anonymous:
        anonymous.http._sleep = lambda _s: None
        registered = anonymous.auth.register("sdk-tenant", "sdk@example.com", PASSWORD)
    with Client("http://api.test", registered["api_key"], transport=faults, retries=2) as client:
        client.http._sleep = lambda _s: None
        yield client


def test_a_tenant_works_through_the_sdk(nsl: Client, db: Session) -> None:
    assert nsl.auth.me()["username"] == "sdk-tenant"
    first = nsl.functions.deploy("hello", HELLO, timeout=5)
    again = nsl.functions.deploy("hello", HELLO.replace("hello", "hi"))
    assert again["id"] == first["id"]
    assert (first["version"], again["version"]) == (1, 2)
    assert [v["version"] for v in nsl.functions.versions(first["id"], page_size=1)] == [2, 1]
    for i in range(3):
        nsl.functions.create(f"extra-{i}", HELLO)
    # Pages of one, followed to the end.
    assert len(list(nsl.functions.list(page_size=1))) == 4

    nsl.secrets.set("API_TOKEN", "s3cret")
    assert [s["name"] for s in nsl.secrets.list()] == ["API_TOKEN"]
    assert "value" not in nsl.secrets.get("API_TOKEN")

    queued = nsl.functions.invoke(first["id"], {"name": "Neo"})
    assert queued["status"] == "queued"
    execution_id = queued["execution_id"]
    assert nsl.executions.get(execution_id)["function_id"] == first["id"]
    assert [e["id"] for e in nsl.executions.list(function_id=first["id"])] == [execution_id]

    trigger = nsl.triggers.create("every-5", first["id"], "cron", {"schedule": "*/5 * * * *"})
    assert nsl.triggers.pause(trigger["id"])["status"] == "paused"
    assert nsl.triggers.resume(trigger["id"])["status"] == "active"
    assert [t["id"] for t in nsl.triggers.list(type="cron")] == [trigger["id"]]
    nsl.triggers.delete(trigger["id"])

    feed = nsl.feeds.create("NEO/USD", ["binance", "okx"], 60, min_sources=1, usdt_as_usd=True)
    assert nsl.feeds.get(feed["id"])["asset_pair"] == "NEO/USD"
    assert list(nsl.feeds.data(feed["id"])) == []
    assert any(s["name"] == "binance" for s in nsl.feeds.sources())
    # Which sources price a pair, and from which market: USDT for USD only when accepted.
    pricing = {s["name"]: s["market"] for s in nsl.feeds.sources("NEO/USD")}
    assert (pricing["binance"], pricing["coingecko"]) == ("NEO/USDT", "NEO/USD")
    strict = {s["name"] for s in nsl.feeds.sources("NEO/USD", usdt_as_usd=False)}
    assert "coingecko" in strict
    assert "binance" not in strict


def test_errors_carry_the_api_code_and_details(nsl: Client, faults: Faults) -> None:
    with pytest.raises(errors.NotFound) as missing:
        nsl.functions.get(999_999)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(errors.ValidationError) as invalid:
        nsl.functions.create("", HELLO)
    assert invalid.value.details is not None
    assert "name" in json.dumps(invalid.value.details)
    with (
        Client("http://api.test", "nsl_not-a-key", transport=faults) as bad,
        pytest.raises(errors.Unauthorized),
    ):
        bad.auth.me()


def test_an_address_is_proven_from_a_wif_and_a_withdrawal_is_never_done_twice(
    nsl: Client, faults: Faults, db: Session
) -> None:
    wif, address = factories.new_account_key()
    account = nsl.gas.prove(WalletKey.from_wif(wif))
    assert (account["address"], account["is_default"]) == (address, True)
    factories.credit(db, db.get_one(GasAccount, account["id"]), "5")
    db.commit()

    # The API withdraws, the answer is lost twice: the retries carry the same key and get
    # the first answer back.
    faults.plan = ["lose-answer", "lose-answer"]
    withdrawal = nsl.gas.withdraw(account["id"], "1.5")
    keys = {r.headers["Idempotency-Key"] for r in faults.seen[-3:]}
    assert len(keys) == 1
    assert (
        db.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.type == "withdraw")
        )
        == 1
    )
    assert nsl.gas.transaction(withdrawal["id"])["amount"] == "1.5"
    assert Decimal(nsl.gas.account(account["id"])["balance"]) == Decimal("3.5")


def test_a_call_that_may_have_run_is_not_retried(nsl: Client, faults: Faults, db: Session) -> None:
    fn = nsl.functions.create("once", HELLO)
    faults.plan = ["lose-answer"]
    with pytest.raises(errors.TransportError, match="not retried"):
        nsl.functions.invoke(fn["id"], {})
    # Done once, and only once.
    assert db.scalar(select(func.count()).select_from(Execution)) == 1


@pytest.mark.parametrize("step", ["refuse", "429"])
def test_a_call_never_sent_or_refused_is_retried(
    nsl: Client, faults: Faults, db: Session, step: str
) -> None:
    fn = nsl.functions.create("twice", HELLO)
    faults.plan = [step]
    nsl.functions.invoke(fn["id"], {})
    assert db.scalar(select(func.count()).select_from(Execution)) == 1


def test_retries_end(nsl: Client, faults: Faults) -> None:
    before = len(faults.seen)
    faults.plan = ["refuse"] * 5
    with pytest.raises(errors.TransportError):
        nsl.auth.me()
    # The first attempt and the two retries allowed.
    assert len(faults.seen) - before == 3


def test_every_call_has_a_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Client("http://api.test", timeout=0)
