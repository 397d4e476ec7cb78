"""The gas bank under concurrent requests: each on its own thread, client and connection.

The usual ``app`` fixture binds every session to one rolled-back connection, which threads
cannot share; these tests serve from the real engine (``committed_db`` empties the tables
afterwards) and release all requests at once with a barrier.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from neosl import jobs
from neosl.config import Settings
from neosl.models import GasAccount, IdempotencyKey, Transaction
from neosl_api.app import create_app
from tests.api.test_basics import assert_error
from tests.factories import new_account_key
from tests.gas.test_api import fund, queued, tenant
from tests.proofs import prove, register_key

# More than the engine's connections (db_pool_size + max_overflow = 10): some requests also
# wait for a connection, as under real load.
THREADS = 12

Call = Callable[[FlaskClient], TestResponse]


def racing_app(settings: Settings, engine: Engine, redis_client: Redis) -> Flask:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    return create_app(settings, session_factory=factory, redis=redis_client)


def race(app: Flask, calls: list[Call]) -> list[TestResponse]:
    """Run every call on its own thread and test client, all released together."""
    barrier = threading.Barrier(len(calls))
    answers: list[TestResponse | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=60)
            answers[i] = calls[i](client)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert errors == []
    done = [a for a in answers if a is not None]
    assert len(done) == len(calls)
    return done


def proven_account(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = register_key(client, headers)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def funded_accounts(
    app: Flask, engine: Engine, count: int, amount: str
) -> tuple[dict[str, str], list[int]]:
    """A new tenant's headers and the ids of ``count`` proven accounts holding ``amount``."""
    client = app.test_client()
    headers = tenant(client)
    ids = [proven_account(client, headers)["id"] for _ in range(count)]
    with Session(engine) as db:
        for account_id in ids:
            fund(db, account_id, amount)
    return headers, ids


def post(path: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Call:
    return lambda client: client.post(path, json=body, headers=headers)


def statuses(answers: list[TestResponse]) -> list[int]:
    return sorted(a.status_code for a in answers)


def bodies(answers: list[TestResponse]) -> list[Any]:
    return [a.get_json() for a in answers]


def task_kwargs(message: dict[str, Any]) -> dict[str, Any]:
    # Celery protocol 2: the body is base64 of [args, kwargs, embed].
    kwargs: dict[str, Any] = json.loads(base64.b64decode(message["body"]))[1]
    return kwargs


def test_same_idempotency_key_at_once_withdraws_once_and_every_answer_agrees(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    app = racing_app(settings, committed_db, redis_client)
    headers, (account_id,) = funded_accounts(app, committed_db, 1, "1")
    same = {**headers, "Idempotency-Key": "one-withdrawal"}
    call = post(f"/v1/gas/accounts/{account_id}/withdraw", same, {"amount": "1"})

    answers = race(app, [call] * THREADS)

    # A retry that overlaps the first request waits for it and replays its answer; none
    # runs the withdrawal again (which would say insufficient_funds).
    assert statuses(answers) == [202] * THREADS, bodies(answers)
    first = answers[0].get_json()
    assert all(body == first for body in bodies(answers))
    assert (first["type"], first["status"], first["amount"]) == ("withdraw", "pending", "1")
    replayed = [a.headers.get("Idempotent-Replayed") for a in answers]
    assert replayed.count(None) == 1
    assert replayed.count("true") == THREADS - 1
    with Session(committed_db) as db:
        withdrawals = db.scalars(select(Transaction.id).where(Transaction.type == "withdraw"))
        assert withdrawals.all() == [first["id"]]
        assert db.get_one(GasAccount, account_id).balance == 0
        stored = db.scalars(select(IdempotencyKey)).one()
        assert (stored.key, stored.status_code, stored.response) == ("one-withdrawal", 202, first)
    messages = queued(redis_client, jobs.GASBANK_QUEUE)
    assert [m["headers"]["task"] for m in messages] == [jobs.SEND_WITHDRAWAL.name]
    assert task_kwargs(messages[0]) == {"transaction_id": first["id"]}


def test_daily_limit_holds_across_accounts_withdrawing_at_once(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    small = dataclasses.replace(
        settings,
        withdraw_min=Decimal("0.1"),
        withdraw_max=Decimal(5),
        withdraw_daily=Decimal(5),
    )
    app = racing_app(small, committed_db, redis_client)
    headers, ids = funded_accounts(app, committed_db, THREADS, "10")
    calls = [
        post(
            f"/v1/gas/accounts/{account_id}/withdraw",
            {**headers, "Idempotency-Key": f"k{i}"},
            {"amount": "3"},
        )
        for i, account_id in enumerate(ids)
    ]

    answers = race(app, calls)

    # 3 + 3 would pass 5: only one of them may go, whichever account it is from.
    assert statuses(answers) == [202] + [422] * (THREADS - 1), bodies(answers)
    for refused in (a for a in answers if a.status_code == 422):
        err = assert_error(refused, 422, "validation_error")
        assert "over the daily limit of 5 GAS (2 left today, UTC)" in err["message"]
    with Session(committed_db) as db:
        withdrawn = db.scalar(
            select(func.sum(Transaction.amount)).where(Transaction.type == "withdraw")
        )
        assert withdrawn == Decimal(3)
        held = db.scalar(select(func.sum(GasAccount.balance)).where(GasAccount.id.in_(ids)))
        assert held == Decimal(10 * THREADS - 3)
    assert len(queued(redis_client, jobs.GASBANK_QUEUE)) == 1


def test_make_default_at_once_answers_200_and_leaves_one_default(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    app = racing_app(settings, committed_db, redis_client)
    headers, ids = funded_accounts(app, committed_db, THREADS, "1")
    calls = [post(f"/v1/gas/accounts/{account_id}/default", headers) for account_id in ids]

    answers = race(app, calls)

    assert statuses(answers) == [200] * THREADS, bodies(answers)
    assert all(body["is_default"] is True for body in bodies(answers))
    with Session(committed_db) as db:
        defaults = db.scalars(
            select(GasAccount.id).where(GasAccount.id.in_(ids), GasAccount.is_default)
        ).all()
    assert len(defaults) == 1
    listed = app.test_client().get("/v1/gas/accounts?limit=100", headers=headers).get_json()
    assert [a["id"] for a in listed["items"] if a["is_default"]] == defaults


def test_first_accounts_registered_at_once_make_exactly_one_default(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    app = racing_app(settings, committed_db, redis_client)
    client = app.test_client()
    headers = tenant(client)
    # Each thread's own key, its challenge asked for and signed before the barrier.
    proofs = [prove(client, headers, new_account_key()[0]) for _ in range(THREADS)]
    calls = [post("/v1/gas/accounts", headers, proof) for proof in proofs]

    answers = race(app, calls)

    assert statuses(answers) == [201] * THREADS, bodies(answers)
    assert sum(body["is_default"] for body in bodies(answers)) == 1
    assert all(body["verified"] is True for body in bodies(answers))
    assert {body["address"] for body in bodies(answers)} == {p["address"] for p in proofs}
    with Session(committed_db) as db:
        rows = db.scalars(select(GasAccount)).all()
    assert len(rows) == THREADS
    assert [r.id for r in rows if r.is_default] == [
        body["id"] for body in bodies(answers) if body["is_default"]
    ]
