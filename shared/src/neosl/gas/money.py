"""GAS amounts: exact decimals with 8 places, or integer units of 1e-8 GAS. Never floats.

The API takes and returns amounts as decimal strings ("1.5"); the chain speaks units.
"""

from __future__ import annotations

import re
from decimal import Decimal

DECIMALS = 8
UNIT = Decimal(1).scaleb(-DECIMALS)  # 0.00000001
# NUMERIC(20, 8): 12 digits before the point.
MAX_AMOUNT = Decimal("999999999999.99999999")
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?$")


class InvalidAmount(ValueError):
    """Not a positive decimal string with at most 8 decimals; the message says why."""


def parse_amount(value: object) -> Decimal:
    """A positive GAS amount from its decimal-string form.

    Raises:
        InvalidAmount: not a string, exponent/NaN/sign forms, more than 8 decimals, zero,
            or more than NUMERIC(20, 8) holds.
    """
    if not isinstance(value, str):
        raise InvalidAmount('amounts are decimal strings, e.g. "1.5"')
    if not _AMOUNT.match(value):
        if re.fullmatch(r"[0-9]+\.[0-9]{9,}", value):
            raise InvalidAmount("GAS has at most 8 decimals")
        raise InvalidAmount('not a plain positive decimal number, e.g. "1.5"')
    amount = Decimal(value)
    if amount <= 0:
        raise InvalidAmount("must be greater than zero")
    return amount


def check_amount(amount: Decimal) -> Decimal:
    """``amount`` itself if it is a positive, finite GAS amount the database can hold.

    For amounts that arrive as ``Decimal`` from code rather than as text from a client.

    Raises:
        InvalidAmount: not a Decimal, not finite, zero or negative, more than 8 decimals,
            or more than NUMERIC(20, 8) holds.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmount("must be a finite Decimal")
    if amount <= 0:
        raise InvalidAmount("must be greater than zero")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"must be at most {MAX_AMOUNT}")
    if amount != amount.quantize(UNIT):
        raise InvalidAmount("GAS has at most 8 decimals")
    return amount


def to_units(amount: Decimal) -> int:
    """Integer units of 1e-8 GAS.

    Raises:
        InvalidAmount: the amount has more than 8 decimals.
    """
    units = amount.scaleb(DECIMALS)
    if units != units.to_integral_value():
        raise InvalidAmount("GAS has at most 8 decimals")
    return int(units)


def from_units(units: int) -> Decimal:
    return Decimal(units).scaleb(-DECIMALS).quantize(UNIT)


def format_amount(amount: Decimal) -> str:
    """The canonical string form: no exponent, no trailing zeros ("1.5", "100", "0.00000001")."""
    text = f"{amount.quantize(UNIT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
