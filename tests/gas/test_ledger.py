"""The ledger's money rules on the real database: charges, refunds, deposits, the invariant."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from neosl.errors import InvalidInput
from neosl.gas import ledger
from neosl.gas.ledger import ChargeStatus, DepositOutcome
from neosl.models import GasAccount, Transaction, UnmatchedDeposit, User
from tests.clirun import run_cli
from tests.factories import credit, make_account, make_user, new_address

D = Decimal


def account(
    db: Session, balance: str = "0", *, default: bool = True, user_id: int | None = None
) -> GasAccount:
    user = db.get_one(User, user_id) if user_id is not None else make_user(db)
    acct = make_account(db, user, default=default)
    if D(balance) > 0:
        credit(db, acct, balance)
    db.commit()
    return acct


def test_charge_debits_the_default_account_once_per_reference(db: Session) -> None:
    acct = account(db, "10")
    first = ledger.charge(db, acct.user_id, "function", D("0.25"), "exec-1")
    assert first.status is ChargeStatus.CHARGED
    assert first.balance == D("9.75")
    again = ledger.charge(db, acct.user_id, "function", D("0.25"), "exec-1")
    assert again.status is ChargeStatus.DUPLICATE
    assert again.transaction_id == first.transaction_id
    assert again.ok
    # Same reference, other type: a different charge.
    assert (
        ledger.charge(db, acct.user_id, "pricefeed", D("0.25"), "exec-1").status
        is ChargeStatus.CHARGED
    )
    db.refresh(acct)
    assert acct.balance == D("9.5")
    assert ledger.verify(db) == []


def test_charge_never_goes_below_zero(db: Session) -> None:
    acct = account(db, "1")
    assert ledger.charge(db, acct.user_id, "function", D("1"), "a").status is ChargeStatus.CHARGED
    result = ledger.charge(db, acct.user_id, "function", D("0.00000001"), "b")
    assert result.status is ChargeStatus.INSUFFICIENT_FUNDS
    assert not result.ok
    # Nothing was written for the refused charge, so the reference stays usable.
    assert db.scalar(select(func.count()).where(Transaction.reference == "b")) == 0
    db.refresh(acct)
    assert acct.balance == 0


def test_charge_without_default_account(db: Session) -> None:
    acct = account(db, "5", default=False)
    assert ledger.charge(db, acct.user_id, "function", D(1), "x").status is ChargeStatus.NO_ACCOUNT
    assert not ledger.can_pay(db, acct.user_id, D(1))


@pytest.mark.parametrize(
    ("charge_type", "amount", "reference"),
    [
        ("withdraw", "1", "r"),
        ("function", "0", "r"),
        ("function", "-1", "r"),
        ("function", "1", ""),
    ],
)
def test_charge_rejects_bad_input(
    db: Session, charge_type: str, amount: str, reference: str
) -> None:
    acct = account(db, "5")
    with pytest.raises(InvalidInput):
        ledger.charge(db, acct.user_id, charge_type, D(amount), reference)


def test_can_pay(db: Session) -> None:
    acct = account(db, "2")
    assert ledger.can_pay(db, acct.user_id, D(2))
    assert not ledger.can_pay(db, acct.user_id, D("2.00000001"))


@pytest.mark.parametrize(
    "amount", [D("0.123456789"), D("1E-9"), D("0"), D("-1"), D("NaN"), D("Infinity"), D("1E13")]
)
def test_charge_refuses_amounts_the_api_refuses(db: Session, amount: Decimal) -> None:
    acct = account(db, "10")
    with pytest.raises(InvalidInput, match="charge amount"):
        ledger.charge(db, acct.user_id, "function", amount, "odd")
    assert db.scalar(select(func.count()).where(Transaction.type == "function")) == 0
    assert ledger.verify(db) == []


def test_a_refused_charge_leaves_the_callers_work_alone(db: Session) -> None:
    """The caller's rows of the same transaction survive a refusal; the caller commits."""
    acct = account(db, "1")
    other = make_user(db, "bystander")
    for refused in (
        ledger.charge(db, acct.user_id, "function", D(5), "too-much"),
        ledger.charge(db, other.id, "function", D(1), "no-account"),
    ):
        assert not refused.ok
    assert ledger.charge(db, acct.user_id, "function", D("0.5"), "fine").ok
    duplicate = ledger.charge(db, acct.user_id, "function", D("0.5"), "fine")
    assert duplicate.status is ChargeStatus.DUPLICATE
    db.commit()
    assert db.get(User, other.id) is not None
    db.refresh(acct)
    assert acct.balance == D("0.5")
    assert ledger.verify(db) == []


def test_database_refuses_a_negative_balance(db: Session) -> None:
    acct = account(db, "1")
    with pytest.raises(IntegrityError):
        db.execute(text("UPDATE gas_accounts SET balance = -1 WHERE id = :id"), {"id": acct.id})
    db.rollback()


def test_failed_withdrawal_is_refunded_exactly_once(db: Session) -> None:
    acct = account(db, "10")
    locked = db.get_one(GasAccount, acct.id, with_for_update=True)
    tx = ledger.debit_withdrawal(db, locked, D(4))
    db.commit()
    assert ledger.fail_withdrawal(db, tx.id, "node said no")
    assert not ledger.fail_withdrawal(db, tx.id, "again")
    assert not ledger.confirm_withdrawal(db, tx.id, 5)
    db.refresh(acct)
    assert acct.balance == 10
    refunds = db.scalars(select(Transaction).where(Transaction.type == "refund")).all()
    assert [(r.amount, r.reference, r.status) for r in refunds] == [
        (D(4), f"withdraw:{tx.id}", "confirmed")
    ]
    assert db.get_one(Transaction, tx.id).failure_reason == "node said no"
    assert ledger.verify(db) == []


def test_deposits_are_idempotent_and_unknown_senders_recorded(db: Session) -> None:
    acct = account(db)
    stranger = new_address()

    def credit(sender: str, index: int) -> DepositOutcome:
        return ledger.credit_deposit(
            db,
            tx_hash="0x" + "ab" * 32,
            notification_index=index,
            block_index=9,
            from_address=sender,
            amount=D("1.5"),
        )

    assert credit(acct.address, 3) is DepositOutcome.CREDITED
    assert credit(acct.address, 3) is DepositOutcome.DUPLICATE
    assert credit(stranger, 4) is DepositOutcome.UNMATCHED
    assert credit(stranger, 4) is DepositOutcome.UNMATCHED
    db.commit()
    db.refresh(acct)
    assert acct.balance == D("1.5")
    unmatched = db.scalars(select(UnmatchedDeposit)).all()
    assert [(u.from_address, u.amount) for u in unmatched] == [(stranger, D("1.5"))]


def test_verify_reports_a_tampered_balance(db: Session) -> None:
    acct = account(db, "3")
    db.execute(text("UPDATE gas_accounts SET balance = 2 WHERE id = :id"), {"id": acct.id})
    mismatches = ledger.verify(db)
    assert [(m.account_id, m.balance, m.expected) for m in mismatches] == [(acct.id, D(2), D(3))]


def run_concurrently(work: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"


@pytest.mark.slow
def test_concurrent_charges_and_withdrawals_on_one_account(
    sessions: sessionmaker[Session], server_env: dict[str, str]
) -> None:
    with sessions() as db:
        acct = account(db, "100")
        acct_id, user_id = acct.id, acct.user_id
    # 50 workers, each: 2 charges (one retried with the same reference) and 1 withdrawal.
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def work(i: int) -> None:
        try:
            barrier.wait()
            with sessions() as db:
                ledger.charge(db, user_id, "function", D("0.3"), f"exec-{i}")
                ledger.charge(db, user_id, "function", D("0.3"), f"exec-{i}")
                ledger.charge(db, user_id, "pricefeed", D("0.2"), f"feed-{i}")
                locked = db.get_one(GasAccount, acct_id, with_for_update=True)
                ledger.debit_withdrawal(db, locked, D("1.25"))
                db.commit()
        except BaseException as exc:
            errors.append(exc)

    run_concurrently(work, 50)
    assert errors == []
    with sessions() as db:
        balance = db.get_one(GasAccount, acct_id).balance
        assert balance == D(100) - 50 * (D("0.3") + D("0.2") + D("1.25"))
        assert db.scalar(select(func.count()).where(Transaction.type == "function")) == 50
        assert ledger.verify(db) == []
    result = run_cli(server_env, "ledger", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 mismatched" in result.stdout


def test_concurrent_spending_cannot_overdraw(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        acct = account(db, "10")
        user_id = acct.user_id
    outcomes: list[ChargeStatus] = []
    lock = threading.Lock()

    def spend(i: int) -> None:
        with sessions() as db:
            status = ledger.charge(db, user_id, "function", D(1), f"r{i}").status
            db.commit()
        with lock:
            outcomes.append(status)

    run_concurrently(spend, 25)
    assert outcomes.count(ChargeStatus.CHARGED) == 10
    assert outcomes.count(ChargeStatus.INSUFFICIENT_FUNDS) == 15
    with sessions() as db:
        assert db.get_one(GasAccount, acct.id).balance == 0
        assert ledger.verify(db) == []


@pytest.mark.slow
def test_cli_verify_exits_1_on_mismatch(
    sessions: sessionmaker[Session], server_env: dict[str, str]
) -> None:
    with sessions() as db:
        acct = account(db, "3")
        db.execute(text("UPDATE gas_accounts SET balance = 4 WHERE id = :id"), {"id": acct.id})
        db.commit()
    result = run_cli(server_env, "ledger", "verify")
    assert result.returncode == 1
    assert f"account {acct.id}: balance 4 != sum of transactions 3" in result.stdout


def test_a_charge_waiting_on_a_change_of_default_pays_from_the_new_default(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as db:
        old = account(db, "5")
        user = db.get_one(User, old.user_id)
        new = make_account(db, user, default=False)
        credit(db, new, "5")
        db.commit()
        old_id, new_id, user_id = old.id, new.id, user.id
    result: list[ledger.ChargeResult] = []

    def charge() -> None:
        with sessions() as db:
            result.append(ledger.charge(db, user_id, "function", D(1), "during-switch"))
            db.commit()

    with sessions() as switch:
        # What "make default" does, held open while a charge arrives.
        switch.execute(
            text("UPDATE gas_accounts SET is_default = false WHERE id = :id"), {"id": old_id}
        )
        switch.execute(
            text("UPDATE gas_accounts SET is_default = true WHERE id = :id"), {"id": new_id}
        )
        waiter = threading.Thread(target=charge)
        waiter.start()

        def charge_is_waiting() -> bool:
            waiting = switch.connection().exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            return bool(waiting.scalar())

        deadline = time.monotonic() + 10
        while not charge_is_waiting():
            assert time.monotonic() < deadline, "the charge never waited for the row lock"
            time.sleep(0.01)
        switch.commit()
        waiter.join(10)
    assert [r.status for r in result] == [ChargeStatus.CHARGED]
    with sessions() as db:
        assert db.get_one(GasAccount, new_id).balance == D(4)
        assert db.get_one(GasAccount, old_id).balance == D(5)
        assert ledger.verify(db) == []
