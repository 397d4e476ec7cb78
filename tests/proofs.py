"""Proving address ownership through the API, as a tenant's wallet would."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from neosl_api.messages import sign_message
from tests.factories import new_account_key


def challenge(client: FlaskClient, headers: dict[str, str], address: str) -> str:
    resp = client.get(
        "/v1/gas/accounts/challenge", query_string={"address": address}, headers=headers
    )
    assert resp.status_code == 200, resp.get_json()
    message: str = resp.get_json()["message"]
    return message


def prove(
    client: FlaskClient,
    headers: dict[str, str],
    wif: str,
    *,
    salt: str | None = None,
) -> dict[str, Any]:
    """Ask for a challenge for ``wif``'s address and sign it: the body of the POST."""
    signed = sign_message(wif, "", None)  # only for the address
    message = challenge(client, headers, signed.address)
    return sign_message(wif, message, salt).as_dict()


def register_key(
    client: FlaskClient,
    headers: dict[str, str],
    wif: str | None = None,
    *,
    salt: str | None = None,
) -> TestResponse:
    """POST /v1/gas/accounts with a valid proof for ``wif`` (a fresh key by default)."""
    if wif is None:
        wif, _ = new_account_key()
    return client.post(
        "/v1/gas/accounts", json=prove(client, headers, wif, salt=salt), headers=headers
    )
