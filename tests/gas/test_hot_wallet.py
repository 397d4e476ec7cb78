from __future__ import annotations

import dataclasses

import pytest

from neosl.config import ConfigError, load_settings
from neosl_gasbank.hot_wallet import load_hot_wallet
from tests.factories import new_account_key
from tests.platform.test_config import env


def test_hot_wallet_matches_the_deposit_address() -> None:
    wif, address = new_account_key()
    settings = load_settings(env(NSL_HOT_WALLET_WIF=wif, NSL_DEPOSIT_ADDRESS=address))
    wallet = load_hot_wallet(settings)
    assert wallet.address == address
    assert wif not in repr(wallet)
    assert load_hot_wallet(settings) is wallet  # derived once


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hot_wallet_wif": None}, "NSL_HOT_WALLET_WIF is not set"),
        ({"hot_wallet_wif": "not-a-wif"}, "NSL_HOT_WALLET_WIF is not a valid WIF"),
        ({"deposit_address": "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs"}, "is not the address of"),
    ],
)
def test_misconfigured_hot_wallet_is_refused(change: dict[str, object], message: str) -> None:
    wif, address = new_account_key()
    good = load_settings(env(NSL_HOT_WALLET_WIF=wif, NSL_DEPOSIT_ADDRESS=address))
    with pytest.raises(ConfigError, match=message) as raised:
        load_hot_wallet(dataclasses.replace(good, **change))  # type: ignore[arg-type]
    assert wif not in str(raised.value)
