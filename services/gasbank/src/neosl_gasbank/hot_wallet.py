"""The service's hot wallet: its key comes only from NSL_HOT_WALLET_WIF."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from neo3.wallet.account import Account

from neosl.config import ConfigError, Settings


@dataclass(frozen=True)
class HotWallet:
    address: str
    wif: str = field(repr=False)


@cache
def load_hot_wallet(settings: Settings) -> HotWallet:
    """The hot wallet, checked against the published deposit address.

    Derived once per process and settings: tasks that run every few seconds ask for it.

    Raises:
        ConfigError: the key is missing or invalid, or its address is not NSL_DEPOSIT_ADDRESS
            (deposits would then arrive at an address whose key we do not hold).
    """
    if settings.hot_wallet_wif is None:
        raise ConfigError("NSL_HOT_WALLET_WIF is not set (the gasbank signs withdrawals with it)")
    try:
        address = str(Account.from_wif(settings.hot_wallet_wif).address)
    except Exception:
        raise ConfigError("NSL_HOT_WALLET_WIF is not a valid WIF private key") from None
    if settings.deposit_address is not None and settings.deposit_address != address:
        raise ConfigError(
            f"NSL_DEPOSIT_ADDRESS ({settings.deposit_address}) is not the address of "
            f"NSL_HOT_WALLET_WIF ({address})"
        )
    return HotWallet(address, settings.hot_wallet_wif)
