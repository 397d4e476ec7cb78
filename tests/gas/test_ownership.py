"""Proven address ownership: only the holder of an address's key can register it."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.gas import ledger
from neosl.models import GasAccount, GasAddressChallenge, UnmatchedDeposit, User
from neosl_api.messages import sign_message
from tests.api.test_basics import assert_error
from tests.factories import make_account, new_account_key
from tests.gas.test_api import tenant
from tests.proofs import challenge, prove, register_key

ACCOUNTS = "/v1/gas/accounts"


def deposit(db: Session, address: str, amount: str = "1") -> ledger.DepositOutcome:
    return ledger.credit_deposit(
        db,
        tx_hash="0x" + secrets.token_hex(32),
        notification_index=0,
        block_index=1,
        from_address=address,
        amount=Decimal(amount),
    )


def test_the_challenge_names_service_tenant_address_nonce_and_expiry(
    client: FlaskClient, settings: Settings
) -> None:
    h = tenant(client, "alice")
    _, address = new_account_key()
    resp = client.get(f"{ACCOUNTS}/challenge", query_string={"address": address}, headers=h)
    assert resp.status_code == 200
    body = resp.get_json()
    message = body["message"]
    assert body["address"] == address
    assert settings.service_name in message
    assert "alice" in message
    assert f"Address: {address}" in message
    assert "Nonce: " in message
    expires = dt.datetime.fromisoformat(body["expires_at"])
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < left <= dt.timedelta(minutes=10)
    assert message.isascii()
    assert challenge(client, h, address) != message  # a new nonce every time


def test_a_valid_proof_registers_with_or_without_salt(client: FlaskClient) -> None:
    h = tenant(client)
    plain = register_key(client, h)
    salted = register_key(client, h, salt=secrets.token_hex(16))
    assert plain.status_code == 201, plain.get_json()
    assert salted.status_code == 201, salted.get_json()
    assert plain.get_json()["verified"] is True
    assert salted.get_json()["verified"] is True


def test_no_challenge_no_registration(client: FlaskClient) -> None:
    h = tenant(client)
    wif, _address = new_account_key()
    body = sign_message(wif, "I own it, trust me").as_dict()
    err = assert_error(client.post(ACCOUNTS, json=body, headers=h), 422, "validation_error")
    assert "no open challenge" in err["message"]


def test_a_key_of_another_address_proves_nothing(client: FlaskClient) -> None:
    """The squatter's attack: claim someone else's address with one's own key."""
    h = tenant(client)
    _, victim = new_account_key()
    squatter_wif, _ = new_account_key()
    message = challenge(client, h, victim)
    body = {**sign_message(squatter_wif, message).as_dict(), "address": victim}
    err = assert_error(client.post(ACCOUNTS, json=body, headers=h), 422, "validation_error")
    assert "belongs to" in err["message"]
    assert client.get(ACCOUNTS, headers=h).get_json()["items"] == []


def test_a_signature_over_another_message_or_salt_fails(client: FlaskClient) -> None:
    h = tenant(client)
    wif, address = new_account_key()
    message = challenge(client, h, address)
    forged = sign_message(wif, message + " ").as_dict()
    err = assert_error(client.post(ACCOUNTS, json=forged, headers=h), 422, "validation_error")
    assert "does not verify" in err["message"]
    salted = sign_message(wif, message, "aa" * 16).as_dict()
    wrong_salt = {**salted, "salt": "bb" * 16}
    assert_error(client.post(ACCOUNTS, json=wrong_salt, headers=h), 422, "validation_error")
    # The challenge is still open after failed attempts: the right proof works.
    assert client.post(ACCOUNTS, json=salted, headers=h).status_code == 201


def test_another_tenants_challenge_is_not_mine(client: FlaskClient) -> None:
    alice, bob = tenant(client, "alice"), tenant(client, "bob")
    wif, _ = new_account_key()
    body = prove(client, bob, wif)
    err = assert_error(client.post(ACCOUNTS, json=body, headers=alice), 422, "validation_error")
    assert "no open challenge" in err["message"]


def test_an_expired_challenge_says_so(client: FlaskClient, db: Session) -> None:
    h = tenant(client)
    wif, address = new_account_key()
    body = prove(client, h, wif)
    db.execute(
        update(GasAddressChallenge)
        .where(GasAddressChallenge.address == address)
        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    db.commit()
    err = assert_error(client.post(ACCOUNTS, json=body, headers=h), 422, "validation_error")
    assert "expired" in err["message"]


def test_a_challenge_is_used_once(client: FlaskClient) -> None:
    h = tenant(client)
    wif, _ = new_account_key()
    body = prove(client, h, wif)
    account = client.post(ACCOUNTS, json=body, headers=h).get_json()
    assert client.delete(f"{ACCOUNTS}/{account['id']}", headers=h).status_code == 204
    err = assert_error(client.post(ACCOUNTS, json=body, headers=h), 422, "validation_error")
    assert "no open challenge" in err["message"]


def test_the_services_own_address_can_never_be_registered(
    client: FlaskClient, settings: Settings
) -> None:
    assert settings.deposit_address is not None
    assert settings.hot_wallet_wif is not None
    h = tenant(client)
    resp = client.get(
        f"{ACCOUNTS}/challenge", query_string={"address": settings.deposit_address}, headers=h
    )
    err = assert_error(resp, 422, "validation_error")
    assert "service itself" in err["message"]
    # Even with a perfect signature by the hot wallet's own key.
    body = sign_message(settings.hot_wallet_wif, "anything").as_dict()
    err = assert_error(client.post(ACCOUNTS, json=body, headers=h), 422, "validation_error")
    assert "service itself" in err["message"]


def test_deposits_from_an_unproven_account_wait_until_it_is_proven(
    client: FlaskClient, db: Session
) -> None:
    """Accounts from before proofs stay, unproven; proving one verifies it in place."""
    h = tenant(client, "alice")
    alice = db.scalars(select(User).where(User.username == "alice")).one()
    wif, address = new_account_key()
    legacy = make_account(db, alice, address, verified=False)
    db.commit()
    shown = client.get(f"{ACCOUNTS}/{legacy.id}", headers=h).get_json()
    assert shown["verified"] is False
    assert deposit(db, address) is ledger.DepositOutcome.UNMATCHED
    db.commit()
    unmatched = db.scalars(
        select(UnmatchedDeposit).where(UnmatchedDeposit.from_address == address)
    ).one()
    assert unmatched.reason == "unverified"

    proven = register_key(client, h, wif)
    assert proven.status_code == 200, proven.get_json()
    assert proven.get_json()["id"] == legacy.id
    assert proven.get_json()["verified"] is True
    assert deposit(db, address, "2") is ledger.DepositOutcome.CREDITED
    db.commit()
    db.refresh(legacy)
    assert legacy.balance == Decimal(2)
    assert ledger.verify(db) == []


def test_the_real_owner_wins_over_an_unproven_squatter(client: FlaskClient, db: Session) -> None:
    tenant(client, "mallory")
    mallory = db.scalars(select(User).where(User.username == "mallory")).one()
    wif, address = new_account_key()
    squat = make_account(db, mallory, address, verified=False)
    db.commit()
    owner = tenant(client, "owner")
    resp = register_key(client, owner, wif)
    assert resp.status_code == 201, resp.get_json()
    assert deposit(db, address, "3") is ledger.DepositOutcome.CREDITED
    db.commit()
    db.refresh(squat)
    assert squat.balance == 0
    assert squat.verified_at is None
    owned = db.get_one(GasAccount, resp.get_json()["id"])
    assert owned.balance == Decimal(3)
    # And the address is now taken: a second proof of it (by anyone) is 409.
    assert_error(register_key(client, tenant(client, "third"), wif), 409, "conflict")


def test_a_deposit_without_a_sender_is_kept_for_operators(db: Session) -> None:
    outcome = ledger.credit_deposit(
        db,
        tx_hash="0x" + secrets.token_hex(32),
        notification_index=0,
        block_index=1,
        from_address=None,
        amount=Decimal(1),
    )
    assert outcome is ledger.DepositOutcome.UNMATCHED
    assert db.scalars(select(UnmatchedDeposit.reason)).one() == "no_sender"
