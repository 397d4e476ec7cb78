"""The gas bank's switch and its deposit address, checked where a process starts."""

from __future__ import annotations

from neosl.config import ConfigError, Settings
from neosl.neo.addresses import InvalidAddress, validate_address


def deposit_address(settings: Settings) -> str | None:
    """The deposit address a process serving the gas bank or following the chain uses.

    None when the gas bank is off. Called at the start of such processes: a follower
    without the address would pass blocks and never record their deposits.

    Raises:
        ConfigError: the gas bank is on and NSL_DEPOSIT_ADDRESS is not set, or it is not a
            Neo N3 address.
    """
    if not settings.gas_bank_enabled:
        return None
    if settings.deposit_address is None:
        raise ConfigError(
            "NSL_DEPOSIT_ADDRESS is not set; the gas bank needs it "
            "(or set NSL_GAS_BANK=off to run without the gas bank)"
        )
    try:
        return validate_address(settings.deposit_address)
    except InvalidAddress as exc:
        raise ConfigError(f"NSL_DEPOSIT_ADDRESS is not a Neo N3 address: {exc}") from None
