"""The scheduler's firing rules, driven directly with a chosen "now": cron slots across DST,
missed slots, concurrent passes, and price conditions held for a duration."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.models import (
    Execution,
    GasAccount,
    PriceData,
    PriceFeed,
    Transaction,
    Trigger,
    TriggerEvent,
)
from neosl.triggers import firing, rules
from neosl_scheduler import prices
from neosl_scheduler.clock import fire_due_cron
from tests.factories import credit, make_account, make_function, make_user

UTC = dt.UTC


@pytest.fixture
def dispatcher(producer: Celery) -> Dispatcher:
    return Dispatcher(producer)


@pytest.fixture
def owner(sessions: sessionmaker[Session]) -> Iterator[tuple[int, int]]:
    with sessions() as db:
        user = make_user(db)
        fn = make_function(db, user)
        db.commit()
        yield user.id, fn.id


def cron_trigger(
    sessions: sessionmaker[Session],
    owner: tuple[int, int],
    schedule: str,
    zone: str,
    after: dt.datetime,
    name: str = "t",
) -> int:
    config = {"schedule": schedule, "timezone": zone}
    with sessions() as db:
        t = Trigger(
            user_id=owner[0],
            function_id=owner[1],
            name=name,
            trigger_type="cron",
            trigger_config=config,
            next_fire_at=rules.next_slot(config, after),
        )
        db.add(t)
        db.commit()
        return t.id


def events(sessions: sessionmaker[Session], trigger_id: int) -> list[TriggerEvent]:
    with sessions() as db:
        return list(
            db.scalars(
                select(TriggerEvent)
                .where(TriggerEvent.trigger_id == trigger_id)
                .order_by(TriggerEvent.id)
            )
        )


def run_clock(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
) -> None:
    now = start
    while now <= end:
        with sessions() as db:
            fire_due_cron(db, settings, dispatcher, now)
        now += step


def run_replicas(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    now: dt.datetime,
    *,
    batch: int,
    replicas: int = 4,
) -> list[int]:
    """Clock passes at ``now`` from ``replicas`` threads at once, each until nothing is due;
    how many each pass fired. Fails on any error of a replica."""
    totals: list[int] = []
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            while True:
                with sessions() as db:
                    done = fire_due_cron(db, settings, dispatcher, now, batch=batch)
                if done.triggers == 0:
                    return
                totals.append(done.fired)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return totals


def fired_slots(sessions: sessionmaker[Session], trigger_id: int) -> list[dt.datetime]:
    return [
        dt.datetime.fromisoformat(e.cause["slot"])
        for e in events(sessions, trigger_id)
        if e.status == "fired"
    ]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "start", "end", "expected"),
    [
        # Spring forward in Berlin (2026-03-29, 02:00 CET -> 03:00 CEST): 02:30 does not
        # exist that night and fires once, at 03:00 CEST.
        (
            "30 2 * * *",
            "2026-03-28T00:00:00",
            "2026-03-30T06:00:00",
            ["2026-03-28T01:30:00", "2026-03-29T01:00:00", "2026-03-30T00:30:00"],
        ),
        # Half-hourly: the skipped 02:00 and 02:30 fire once together at the jump's end.
        (
            "*/30 * * * *",
            "2026-03-28T23:50:00",
            "2026-03-29T01:40:00",
            [
                "2026-03-29T00:00:00",
                "2026-03-29T00:30:00",
                "2026-03-29T01:00:00",
                "2026-03-29T01:30:00",
            ],
        ),
        # Fall back (2026-10-25, 03:00 CEST -> 02:00 CET): 02:30 happens twice and fires
        # once, at its first occurrence (CEST).
        (
            "30 2 * * *",
            "2026-10-24T00:00:00",
            "2026-10-26T06:00:00",
            ["2026-10-24T00:30:00", "2026-10-25T00:30:00", "2026-10-26T01:30:00"],
        ),
        (
            "*/30 * * * *",
            "2026-10-24T23:50:00",
            "2026-10-25T02:10:00",
            [
                "2026-10-25T00:00:00",  # 02:00 CEST
                "2026-10-25T00:30:00",  # 02:30 CEST
                "2026-10-25T02:00:00",  # 03:00 CET: the repeated 02:00 and 02:30 do not fire
            ],
        ),
    ],
)
def test_berlin_dst_transitions_fire_as_documented(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
    schedule: str,
    start: str,
    end: str,
    expected: list[str],
) -> None:
    trigger_id = cron_trigger(sessions, owner, schedule, "Europe/Berlin", at(start))
    run_clock(sessions, settings, dispatcher, at(start), at(end), dt.timedelta(minutes=5))
    assert fired_slots(sessions, trigger_id) == [at(t) for t in expected]
    assert all(e.status == "fired" for e in events(sessions, trigger_id))


def test_missed_slots_fire_the_latest_and_record_the_rest_skipped(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
) -> None:
    start = at("2026-11-26T10:00:30")
    trigger_id = cron_trigger(sessions, owner, "* * * * *", "UTC", start)  # next: 10:01
    now = at("2026-11-26T10:06:10")  # 10:01 .. 10:06 are due: six slots
    with sessions() as db:
        done = fire_due_cron(db, settings, dispatcher, now)
    assert (done.fired, done.skipped) == (1, 5)
    history = events(sessions, trigger_id)
    assert [e.status for e in history] == ["skipped"] * 5 + ["fired"]
    assert [e.cause["slot"] for e in history] == [
        at(f"2026-11-26T10:0{m}:00").isoformat() for m in range(1, 7)
    ]
    assert history[-1].cause["missed"] == 5
    assert all(e.reason is not None and e.reason.startswith("missed") for e in history[:5])
    with sessions() as db:
        assert db.get_one(Trigger, trigger_id).next_fire_at == at("2026-11-26T10:07:00")
        # Nothing more is due at the same instant: a second pass (another replica) is a no-op.
        assert fire_due_cron(db, settings, dispatcher, now).triggers == 0
        assert db.scalar(select(func.count()).select_from(Execution)) == 1


def test_concurrent_passes_fire_every_trigger_once(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
) -> None:
    start = at("2026-11-26T10:00:30")
    ids = [
        cron_trigger(sessions, owner, "* * * * *", "UTC", start, name=f"t{i}") for i in range(300)
    ]
    now = at("2026-11-26T10:01:05")
    totals = run_replicas(sessions, settings, dispatcher, now, batch=25)
    assert sum(totals) == len(ids)
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Execution)) == len(ids)
        per_trigger = db.execute(
            select(TriggerEvent.trigger_id, func.count()).group_by(TriggerEvent.trigger_id)
        ).all()
    assert sorted(per_trigger) == [(i, 1) for i in ids]


def test_a_pass_that_dies_before_commit_leaves_the_slot_due(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
) -> None:
    start = at("2026-11-26T10:00:30")
    trigger_id = cron_trigger(sessions, owner, "* * * * *", "UTC", start)
    now = at("2026-11-26T10:01:05")
    with sessions() as db:
        # As a clock killed mid-pass: the work is done in the transaction, then it ends
        # without a commit.
        db.commit = lambda: None  # type: ignore[method-assign]
        fire_due_cron(db, settings, dispatcher, now)
        db.rollback()
    assert events(sessions, trigger_id) == []
    with sessions() as db:
        assert fire_due_cron(db, settings, dispatcher, now).fired == 1
    assert fired_slots(sessions, trigger_id) == [at("2026-11-26T10:01:00")]


# -- price ----------------------------------------------------------------------------------

T0 = at("2026-11-26T12:00:00")


def price_setup(
    sessions: sessionmaker[Session], owner: tuple[int, int], duration: int
) -> tuple[int, int]:
    with sessions() as db:
        feed = PriceFeed(user_id=owner[0], asset_pair="NEO/USD", frequency=10, sources=[])
        db.add(feed)
        db.flush()
        config = {
            "asset_pair": "NEO/USD",
            "condition": "above",
            "threshold": "50",
            "duration": duration,
        }
        t = Trigger(
            user_id=owner[0],
            function_id=owner[1],
            name="price",
            trigger_type="price",
            trigger_config=config,
            feed_id=feed.id,
            state={"armed": True, "since": None, "last_id": 0},
        )
        db.add(t)
        db.commit()
        return feed.id, t.id


def add_prices(
    sessions: sessionmaker[Session], feed_id: int, points: list[tuple[int, str]]
) -> None:
    with sessions() as db:
        for offset, price in points:
            db.add(
                PriceData(
                    feed_id=feed_id,
                    timestamp=T0 + dt.timedelta(seconds=offset),
                    price=Decimal(price),
                    sources_used=1,
                )
            )
        db.commit()


def evaluate(
    sessions: sessionmaker[Session], settings: Settings, dispatcher: Dispatcher, offset: int
) -> int:
    with sessions() as db:
        fired = prices.evaluate(db, settings, dispatcher, T0 + dt.timedelta(seconds=offset))
        db.commit()
        return fired


def test_price_fires_once_per_run_that_lasts_the_duration(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
) -> None:
    feed_id, trigger_id = price_setup(sessions, owner, duration=60)

    def step(points: list[tuple[int, str]], now: int) -> int:
        add_prices(sessions, feed_id, points)
        return evaluate(sessions, settings, dispatcher, now)

    assert step([(0, "49"), (10, "51")], 20) == 0  # holds since +10, for 10 s
    assert step([(s, "52") for s in range(20, 80, 10)], 70) == 1  # 60 s: fires
    assert step([(80, "53")], 80) == 0  # still holds: disarmed, no second firing
    assert step([(90, "50")], 90) == 0  # "above 50" is strict: the run ends, re-armed
    assert step([(s, "55") for s in range(100, 170, 10)], 160) == 1  # a new run, fired
    # Between prices: the clock's periodic check fires a run that reaches its duration.
    assert step([(170, "49"), (200, "60")], 200) == 0
    assert evaluate(sessions, settings, dispatcher, 259) == 0
    assert evaluate(sessions, settings, dispatcher, 260) == 1
    # A silent feed (over 3 frequencies, at least 60 s) breaks a run.
    assert step([(300, "40"), (310, "60")], 311) == 0
    assert evaluate(sessions, settings, dispatcher, 371) == 0  # 61 s without a price
    assert step([(380, "60")], 440) == 1  # a fresh run from +380 reaches 60 s

    history = events(sessions, trigger_id)
    assert [e.status for e in history] == ["fired"] * 4
    first = history[0].cause
    assert first == {
        "type": "price",
        "trigger_id": trigger_id,
        "feed_id": feed_id,
        "pair": "NEO/USD",
        "price": "52.00000000",
        "price_at": (T0 + dt.timedelta(seconds=70)).isoformat(),
        "threshold": "50",
        "condition": "above",
        "duration": 60,
        "since": (T0 + dt.timedelta(seconds=10)).isoformat(),
    }
    assert [e.cause["since"] for e in history] == [
        (T0 + dt.timedelta(seconds=s)).isoformat() for s in (10, 100, 200, 380)
    ]
    with sessions() as db:
        executions = list(db.scalars(select(Execution).order_by(Execution.id)))
    inputs: list[Any] = [e.input for e in executions]
    assert inputs == [e.cause for e in history]


def test_paused_price_triggers_are_not_evaluated(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    owner: tuple[int, int],
    redis_client: object,
) -> None:
    feed_id, trigger_id = price_setup(sessions, owner, duration=0)
    with sessions() as db:
        db.get_one(Trigger, trigger_id).status = "paused"
        db.commit()
    add_prices(sessions, feed_id, [(0, "60")])
    assert evaluate(sessions, settings, dispatcher, 1) == 0
    assert events(sessions, trigger_id) == []


# -- paid before it runs ------------------------------------------------------------------


def priced_owner(
    sessions: sessionmaker[Session], settings: Settings, balance: str
) -> tuple[Settings, tuple[int, int], int]:
    """Settings with executions priced (hold of a 30 s run: 0.001 + 300 x 0.0001 = 0.031),
    and a tenant with a function and a default account holding ``balance``."""
    priced = dataclasses.replace(
        settings, function_base_fee=Decimal("0.001"), function_fee_per_100ms=Decimal("0.0001")
    )
    with sessions() as db:
        user = make_user(db)
        fn = make_function(db, user)
        account = make_account(db, user)
        credit(db, account, balance)
        db.commit()
        return priced, (user.id, fn.id), account.id


def test_a_firing_holds_the_most_its_execution_can_cost(
    sessions: sessionmaker[Session], settings: Settings, dispatcher: Dispatcher
) -> None:
    priced, owner, account_id = priced_owner(sessions, settings, "0.07")
    start = at("2026-11-26T10:00:30")
    ids = [cron_trigger(sessions, owner, "* * * * *", "UTC", start, name=f"t{i}") for i in range(3)]
    with sessions() as db:
        fire_due_cron(db, priced, dispatcher, at("2026-11-26T10:01:05"))
    # Two holds of 0.031 fit in 0.07, the third does not: it is skipped with the reason.
    outcomes = [events(sessions, i)[0] for i in ids]
    assert [e.status for e in outcomes] == ["fired", "fired", "skipped"]
    assert outcomes[2].reason is not None
    assert firing.unpaid(outcomes[2].reason)
    assert "0.031 GAS" in outcomes[2].reason
    with sessions() as db:
        executions = db.scalars(select(Execution).order_by(Execution.id)).all()
        assert len(executions) == 2
        for execution in executions:
            assert execution.hold_transaction_id is not None
            hold = db.get_one(Transaction, execution.hold_transaction_id)
            assert (hold.type, hold.status, hold.amount, hold.reference) == (
                "function",
                "pending",
                Decimal("0.031"),
                f"execution:{execution.id}",
            )
        assert db.get_one(GasAccount, account_id).balance == Decimal("0.008")
        assert ledger.verify(db) == []


def test_concurrent_firings_never_hold_more_than_the_balance(
    sessions: sessionmaker[Session], settings: Settings, dispatcher: Dispatcher
) -> None:
    priced, owner, account_id = priced_owner(sessions, settings, "0.1")
    start = at("2026-11-26T10:00:30")
    ids = [
        cron_trigger(sessions, owner, "* * * * *", "UTC", start, name=f"t{i}") for i in range(40)
    ]
    run_replicas(sessions, priced, dispatcher, at("2026-11-26T10:01:05"), batch=3)
    statuses = [events(sessions, i)[0].status for i in ids]
    # 0.1 covers three holds of 0.031, whichever replicas fired them.
    assert statuses.count("fired") == 3
    assert statuses.count("skipped") == len(ids) - 3
    with sessions() as db:
        assert db.get_one(GasAccount, account_id).balance == Decimal("0.007")
        assert db.scalar(select(func.count()).select_from(Execution)) == 3
        assert ledger.verify(db) == []
