"""Ownership proofs signed by the SDK's wallet module hold for the API's verifier, from a
WIF and from a NEP-6 wallet file (keys encrypted by neo-mamba, an independent NEP-2)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest
from neo3.wallet.account import Account

from neosl_api.messages import verify_ownership
from neosl_client import wallet
from neosl_client.wallet import WalletError, WalletKey

PASSWORD = "wallet passphrase"


def nep6(path: Path, *keys: bytes, default: int = 0) -> Path:
    accounts = [
        {
            "address": str(Account.from_private_key(key).address),
            "label": None,
            "isDefault": i == default,
            "lock": False,
            "key": Account.private_key_to_nep2(key, PASSWORD).decode(),
            "contract": None,
            "extra": None,
        }
        for i, key in enumerate(keys)
    ]
    path.write_text(
        json.dumps(
            {
                "name": "test",
                "version": "1.0",
                "scrypt": {"n": 16384, "r": 8, "p": 8},
                "accounts": accounts,
                "extra": None,
            }
        )
    )
    return path


def test_a_wif_signs_a_proof_the_api_accepts() -> None:
    private = secrets.token_bytes(32)
    key = WalletKey.from_wif(Account.private_key_to_wif(private))
    mamba = Account.from_private_key(private)
    assert (key.address, key.public_key_hex) == (str(mamba.address), str(mamba.public_key))
    challenge = "Prove you own this address: 8f3a (ASCII only)"
    verify_ownership(key.address, challenge, key.public_key_hex, key.sign_message(challenge))
    salted = key.sign_message(challenge, salt="0123abcd")
    verify_ownership(key.address, challenge, key.public_key_hex, salted, "0123abcd")
    assert private.hex() not in repr(key)


def test_a_nep6_wallet_opens_with_its_password(tmp_path: Path) -> None:
    first, second = secrets.token_bytes(32), secrets.token_bytes(32)
    path = nep6(tmp_path / "wallet.json", first, second, default=1)
    default = WalletKey.from_nep6(path, PASSWORD)
    assert default.address == str(Account.from_private_key(second).address)
    named = WalletKey.from_nep6(path, PASSWORD, str(Account.from_private_key(first).address))
    assert named.private_key == first
    with pytest.raises(WalletError, match="wrong password"):
        WalletKey.from_nep6(path, "not the password")
    with pytest.raises(WalletError, match="no account"):
        WalletKey.from_nep6(path, PASSWORD, "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs")


@pytest.mark.parametrize("text", ["", "L1", "KxDgvEKzgSBPPfuVfw67oPQBSjidEiqTHURKSDL1R7yGaGYAeYnX"])
def test_what_is_not_a_wif_is_refused(text: str) -> None:
    with pytest.raises(WalletError):
        WalletKey.from_wif(text)


def test_ripemd160_without_hashlib_gives_the_same_digests() -> None:
    for size in (0, 1, 55, 56, 63, 64, 65, 300):
        data = secrets.token_bytes(size)
        assert wallet._ripemd160_python(data) == hashlib.new("ripemd160", data).digest()
