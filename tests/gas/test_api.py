"""The gas bank over HTTP: accounts, deposit address, withdrawals, history."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import base58
import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from neosl import jobs
from neosl.config import ConfigError, Settings
from neosl.gas import ledger
from neosl.models import DeploymentFact, GasAccount, Transaction
from neosl_api.app import create_app
from tests.api.test_accounts import auth, register
from tests.api.test_basics import assert_error
from tests.factories import credit, new_account_key, new_address
from tests.proofs import register_key


def tenant(client: FlaskClient, name: str = "alice") -> dict[str, str]:
    return auth(register(client, name, f"{name}@example.com")["api_key"])


def add_account(
    client: FlaskClient, headers: dict[str, str], wif: str | None = None
) -> dict[str, Any]:
    """Register a proven address (of ``wif``, or of a fresh key)."""
    resp = register_key(client, headers, wif)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def fund(db: Session, account_id: int, amount: str) -> None:
    assert credit(db, db.get_one(GasAccount, account_id), amount) is ledger.DepositOutcome.CREDITED
    db.commit()


def funded(client: FlaskClient, db: Session, amount: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A new tenant's headers and its first account, holding ``amount`` GAS."""
    headers = tenant(client)
    account = add_account(client, headers)
    fund(db, account["id"], amount)
    return headers, account


def withdraw(
    client: FlaskClient,
    headers: dict[str, str],
    account_id: int,
    amount: Any,
    key: str | None = "k1",
) -> Any:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(
        f"/v1/gas/accounts/{account_id}/withdraw",
        json={"amount": amount},
        headers={**headers, **extra},
    )


def queued(redis_client: Redis, queue: str) -> list[dict[str, Any]]:
    return [json.loads(m) for m in redis_client.lrange(queue, 0, -1)]


def test_register_accounts_first_is_default(client: FlaskClient) -> None:
    h = tenant(client)
    first = add_account(client, h)
    second = add_account(client, h)
    assert first["is_default"] is True
    assert second["is_default"] is False
    assert first["balance"] == "0"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("NotAnAddress", "34 characters"),
        (12345, "Not a valid string"),
        # A valid base58check string of Neo Legacy's version byte (0x17), not N3's (0x35).
        (base58.b58encode_check(b"\x17" + bytes(range(20))).decode(), "version byte"),
    ],
)
def test_invalid_address_says_why(client: FlaskClient, address: object, reason: str) -> None:
    h = tenant(client)
    proof = {"address": address, "public_key": "02" + "00" * 32, "signature": "00" * 64}
    resp = client.post("/v1/gas/accounts", json=proof, headers=h)
    err = assert_error(resp, 422, "validation_error")
    assert reason in " ".join(err["details"]["address"])
    if isinstance(address, str):
        resp = client.get(
            "/v1/gas/accounts/challenge", query_string={"address": address}, headers=h
        )
        err = assert_error(resp, 422, "validation_error")
        assert reason in " ".join(err["details"]["address"])


def test_bad_checksum_is_422(client: FlaskClient) -> None:
    good = new_address()
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    err = assert_error(
        client.get(
            "/v1/gas/accounts/challenge", query_string={"address": bad}, headers=tenant(client)
        ),
        422,
        "validation_error",
    )
    assert "checksum" in " ".join(err["details"]["address"])


def test_address_of_another_tenant_is_409(client: FlaskClient) -> None:
    wif, _ = new_account_key()
    add_account(client, tenant(client, "alice"), wif)
    bob = tenant(client, "bob")
    assert_error(register_key(client, bob, wif), 409, "conflict")


def test_accounts_are_isolated_between_tenants(client: FlaskClient) -> None:
    alice, bob = tenant(client, "alice"), tenant(client, "bob")
    mine = add_account(client, alice)
    add_account(client, bob)
    page = client.get("/v1/gas/accounts", headers=alice).get_json()
    assert [a["id"] for a in page["items"]] == [mine["id"]]
    assert page["next_cursor"] is None
    assert_error(client.get(f"/v1/gas/accounts/{mine['id']}", headers=bob), 404, "not_found")
    assert_error(client.get("/v1/gas/accounts/999999", headers=bob), 404, "not_found")
    assert_error(withdraw(client, bob, mine["id"], "1"), 404, "not_found")


def test_list_accounts_paginates(client: FlaskClient) -> None:
    h = tenant(client)
    ids = [add_account(client, h)["id"] for _ in range(3)]
    first = client.get("/v1/gas/accounts?limit=2", headers=h).get_json()
    second = client.get(
        f"/v1/gas/accounts?limit=2&cursor={first['next_cursor']}", headers=h
    ).get_json()
    assert [a["id"] for a in first["items"] + second["items"]] == ids[::-1]


def test_set_default(client: FlaskClient) -> None:
    h = tenant(client)
    first, second = add_account(client, h), add_account(client, h)
    resp = client.post(f"/v1/gas/accounts/{second['id']}/default", headers=h)
    assert resp.get_json()["is_default"] is True
    assert (
        client.get(f"/v1/gas/accounts/{first['id']}", headers=h).get_json()["is_default"] is False
    )


def test_delete_only_at_zero_balance_and_nothing_pending(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    first, second = add_account(client, h), add_account(client, h)
    fund(db, first["id"], "5")
    err = assert_error(client.delete(f"/v1/gas/accounts/{first['id']}", headers=h), 409, "conflict")
    assert "5 GAS" in err["message"]
    pending = withdraw(client, h, first["id"], "5")
    assert pending.status_code == 202
    err = assert_error(client.delete(f"/v1/gas/accounts/{first['id']}", headers=h), 409, "conflict")
    assert "a withdrawal is pending" in err["message"]
    assert err["details"] == {"pending_transactions": [pending.get_json()["id"]]}
    # The second account (empty) goes; the default moves when the default goes.
    assert client.delete(f"/v1/gas/accounts/{second['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/gas/accounts/{second['id']}", headers=h), 404, "not_found")


@pytest.mark.parametrize("charge_type", ["function", "pricefeed"])
def test_a_pending_hold_blocks_removal_until_it_settles(
    client: FlaskClient, db: Session, charge_type: str
) -> None:
    h = tenant(client)
    account = add_account(client, h)
    path = f"/v1/gas/accounts/{account['id']}"
    user_id = client.get("/v1/me", headers=h).get_json()["id"]
    fund(db, account["id"], "1")
    # What an on-chain action (or an execution) holds while in flight: here all of the balance.
    held = ledger.hold(db, user_id, charge_type, Decimal("1"), "action:1")
    assert held.status is ledger.ChargeStatus.CHARGED
    db.commit()
    assert client.get(path, headers=h).get_json()["balance"] == "0"
    err = assert_error(client.delete(path, headers=h), 409, "conflict")
    assert "fees are held" in err["message"]
    assert err["details"] == {"pending_transactions": [held.transaction_id]}
    assert client.get(path, headers=h).status_code == 200
    # Settled at its full cost: nothing pending and nothing left, so it goes.
    assert held.transaction_id is not None
    assert ledger.settle_hold(db, held.transaction_id, Decimal("1"), None) == Decimal("1")
    db.commit()
    assert client.delete(path, headers=h).status_code == 204


def test_a_released_hold_refunds_and_the_balance_then_blocks_removal(
    client: FlaskClient, db: Session
) -> None:
    h = tenant(client)
    account = add_account(client, h)
    path = f"/v1/gas/accounts/{account['id']}"
    user_id = client.get("/v1/me", headers=h).get_json()["id"]
    fund(db, account["id"], "2")
    first = ledger.hold(db, user_id, "function", Decimal("1"), "action:1")
    second = ledger.hold(db, user_id, "function", Decimal("1"), "action:2")
    db.commit()
    err = assert_error(client.delete(path, headers=h), 409, "conflict")
    assert err["details"] == {"pending_transactions": [first.transaction_id, second.transaction_id]}
    assert first.transaction_id is not None
    assert second.transaction_id is not None
    assert ledger.release_hold(db, first.transaction_id, "not sent")
    assert ledger.settle_hold(db, second.transaction_id, Decimal("1"), None) == Decimal("1")
    db.commit()
    err = assert_error(client.delete(path, headers=h), 409, "conflict")
    assert "1 GAS" in err["message"]  # the refund
    assert ledger.verify(db) == []


def test_deleting_the_default_promotes_the_oldest_remaining(client: FlaskClient) -> None:
    h = tenant(client)
    first, second, third = (add_account(client, h) for _ in range(3))
    assert client.delete(f"/v1/gas/accounts/{first['id']}", headers=h).status_code == 204
    assert (
        client.get(f"/v1/gas/accounts/{second['id']}", headers=h).get_json()["is_default"] is True
    )
    assert (
        client.get(f"/v1/gas/accounts/{third['id']}", headers=h).get_json()["is_default"] is False
    )


def test_removed_address_can_be_registered_again(client: FlaskClient) -> None:
    wif, _ = new_account_key()
    acct = add_account(client, tenant(client, "alice"), wif)
    assert (
        client.delete(
            f"/v1/gas/accounts/{acct['id']}", headers=tenant(client, "alice2")
        ).status_code
        == 404
    )
    alice = auth(
        client.post(
            "/v1/auth/login", json={"username": "alice", "password": "correct horse battery"}
        ).get_json()["access_token"]
    )
    assert client.delete(f"/v1/gas/accounts/{acct['id']}", headers=alice).status_code == 204
    add_account(client, tenant(client, "bob"), wif)


def test_deposit_address(client: FlaskClient, settings: Settings) -> None:
    body = client.get("/v1/gas/deposit-address", headers=tenant(client)).get_json()
    assert body["address"] == settings.deposit_address


def test_withdraw_debits_as_pending_and_queues_the_job(
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h, acct = funded(client, db, "10")
    resp = withdraw(client, h, acct["id"], "2.5")
    assert resp.status_code == 202, resp.get_json()
    tx = resp.get_json()
    assert (tx["type"], tx["status"], tx["amount"], tx["account_id"]) == (
        "withdraw",
        "pending",
        "2.5",
        acct["id"],
    )
    assert client.get(f"/v1/gas/accounts/{acct['id']}", headers=h).get_json()["balance"] == "7.5"
    messages = queued(redis_client, jobs.GASBANK_QUEUE)
    assert [m["headers"]["task"] for m in messages] == [jobs.SEND_WITHDRAWAL.name]


def test_withdraw_replays_and_refuses_key_reuse(
    client: FlaskClient, db: Session, redis_client: Redis
) -> None:
    h, acct = funded(client, db, "10")
    first = withdraw(client, h, acct["id"], "1", key="same")
    again = withdraw(client, h, acct["id"], "1", key="same")
    assert again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/gas/accounts/{acct['id']}", headers=h).get_json()["balance"] == "9"
    assert len(queued(redis_client, jobs.GASBANK_QUEUE)) == 1
    assert_error(withdraw(client, h, acct["id"], "2", key="same"), 409, "conflict")
    # Keys are per tenant: bob may use "same" too.
    bob = tenant(client, "bob")
    bob_acct = add_account(client, bob)
    fund(db, bob_acct["id"], "3")
    assert withdraw(client, bob, bob_acct["id"], "1", key="same").status_code == 202


def test_withdraw_needs_an_idempotency_key(client: FlaskClient, db: Session) -> None:
    h, acct = funded(client, db, "10")
    assert_error(withdraw(client, h, acct["id"], "1", key=None), 400, "idempotency_key_required")
    assert_error(
        withdraw(client, h, acct["id"], "1", key="x" * 201), 400, "idempotency_key_required"
    )


@pytest.mark.parametrize("amount", ["0", "-1", "1e3", "NaN", "1.123456789", 1.5, 2, None, ""])
def test_withdraw_amount_validation(client: FlaskClient, amount: Any) -> None:
    h = tenant(client)
    acct = add_account(client, h)
    err = assert_error(withdraw(client, h, acct["id"], amount), 422, "validation_error")
    assert "amount" in err["details"]


def test_withdraw_insufficient_funds_is_409_and_debits_nothing(
    client: FlaskClient, db: Session
) -> None:
    h = tenant(client)
    acct = add_account(client, h)
    fund(db, acct["id"], "1")
    assert_error(withdraw(client, h, acct["id"], "1.00000001"), 409, "insufficient_funds")
    assert client.get(f"/v1/gas/accounts/{acct['id']}", headers=h).get_json()["balance"] == "1"
    # The failure was not stored under the key: the same key works once funds arrive.
    fund(db, acct["id"], "1")
    assert withdraw(client, h, acct["id"], "1.00000001").status_code == 202


@pytest.mark.parametrize(
    ("amount", "message"),
    [("0.09", "minimum withdrawal is 0.1"), ("10001", "maximum withdrawal is 10000")],
)
def test_withdraw_limits(client: FlaskClient, db: Session, amount: str, message: str) -> None:
    h = tenant(client)
    acct = add_account(client, h)
    fund(db, acct["id"], "20000")
    err = assert_error(withdraw(client, h, acct["id"], amount), 422, "validation_error")
    assert message in err["message"]


def test_daily_limit_counts_today_except_failed(
    client: FlaskClient, db: Session, settings: Settings
) -> None:
    h = tenant(client)
    acct = add_account(client, h)
    fund(db, acct["id"], "200000")
    per = settings.withdraw_max
    n = int(settings.withdraw_daily / per)
    for i in range(n):
        assert withdraw(client, h, acct["id"], str(per), key=f"k{i}").status_code == 202
    err = assert_error(withdraw(client, h, acct["id"], "0.1", key="over"), 422, "validation_error")
    assert "daily limit" in err["message"]
    # A failed (refunded) withdrawal frees its share of the limit.
    first = db.scalars(
        select(Transaction.id).where(Transaction.type == "withdraw").order_by(Transaction.id)
    ).first()
    assert first is not None
    assert ledger.fail_withdrawal(db, first, "test")
    db.commit()
    assert withdraw(client, h, acct["id"], "0.1", key="over").status_code == 202


def test_transactions_history_filters_and_isolation(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    a1, a2 = add_account(client, h), add_account(client, h)
    fund(db, a1["id"], "10")
    fund(db, a2["id"], "3")
    withdraw(client, h, a1["id"], "1")
    everything = client.get("/v1/gas/transactions", headers=h).get_json()["items"]
    assert [t["type"] for t in everything] == ["withdraw", "deposit", "deposit"]
    only_a1 = client.get(f"/v1/gas/transactions?account_id={a1['id']}", headers=h).get_json()[
        "items"
    ]
    assert {t["account_id"] for t in only_a1} == {a1["id"]}
    pending = client.get("/v1/gas/transactions?status=pending", headers=h).get_json()["items"]
    assert [t["type"] for t in pending] == ["withdraw"]
    deposits = client.get("/v1/gas/transactions?type=deposit&limit=1", headers=h).get_json()
    assert len(deposits["items"]) == 1
    assert deposits["next_cursor"]
    created = everything[0]["created_at"]
    later = client.get(
        "/v1/gas/transactions", query_string={"since": "2999-01-01T00:00:00+00:00"}, headers=h
    )
    assert later.get_json()["items"] == []
    upto = client.get(
        "/v1/gas/transactions", query_string={"until": created}, headers=h
    ).get_json()["items"]
    assert all(t["created_at"] < created for t in upto)
    assert_error(client.get("/v1/gas/transactions?type=bogus", headers=h), 422, "validation_error")
    assert_error(
        client.get("/v1/gas/transactions?since=2024-01-01", headers=h), 422, "validation_error"
    )
    bob = tenant(client, "bob")
    assert client.get("/v1/gas/transactions", headers=bob).get_json()["items"] == []
    assert_error(
        client.get(f"/v1/gas/transactions/{everything[0]['id']}", headers=bob), 404, "not_found"
    )
    assert client.get(f"/v1/gas/transactions/{everything[0]['id']}", headers=h).status_code == 200


def test_ledger_verify_holds_after_api_activity(client: FlaskClient, db: Session) -> None:
    h, acct = funded(client, db, "10")
    withdraw(client, h, acct["id"], "4")
    assert ledger.verify(db) == []
    total = db.scalar(select(func.count()).select_from(Transaction))
    assert total == 2


@pytest.mark.parametrize(
    "path",
    [
        "/v1/gas/accounts/60661154412905",
        "/v1/gas/transactions/21256093697653592064",
        "/v1/gas/accounts/0",
    ],
)
def test_ids_beyond_any_row_are_404_not_500(client: FlaskClient, path: str) -> None:
    h = tenant(client)
    assert_error(client.get(path, headers=h), 404, "not_found")
    if "accounts" in path:
        assert_error(client.delete(path, headers=h), 404, "not_found")
        assert_error(client.post(f"{path}/default", headers=h), 404, "not_found")
        assert_error(withdraw(client, h, int(path.rsplit("/", 1)[1]), "1"), 404, "not_found")


def test_account_filter_beyond_any_row_is_422(client: FlaskClient) -> None:
    h = tenant(client)
    resp = client.get("/v1/gas/transactions?account_id=3744440821", headers=h)
    assert_error(resp, 422, "validation_error")


def test_the_api_refuses_to_start_without_a_deposit_address(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="NSL_DEPOSIT_ADDRESS"):
        create_app(dataclasses.replace(settings, deposit_address=None))
    off = create_app(dataclasses.replace(settings, deposit_address=None, gas_bank_enabled=False))
    assert off.name == "neosl_api"


def test_no_deposit_address_the_follower_does_not_watch(
    client: FlaskClient, db: Session, settings: Settings
) -> None:
    h = tenant(client)
    other = new_address()
    db.add(DeploymentFact(name="follow:ledger-deposits", value=f"Transfer@0xd2a4 to {other}"))
    db.commit()
    err = assert_error(client.get("/v1/gas/deposit-address", headers=h), 503, "unavailable")
    assert "chain follower" in err["message"]
    db.execute(
        update(DeploymentFact)
        .where(DeploymentFact.name == "follow:ledger-deposits")
        .values(value=f"Transfer@0xd2a4 to {settings.deposit_address}")
    )
    db.commit()
    body = client.get("/v1/gas/deposit-address", headers=h).get_json()
    assert body["address"] == settings.deposit_address
