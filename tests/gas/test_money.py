from __future__ import annotations

from decimal import Decimal

import pytest

from neosl.gas.money import InvalidAmount, format_amount, from_units, parse_amount, to_units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal(1)),
        ("1.5", Decimal("1.5")),
        ("0.00000001", Decimal("0.00000001")),
        ("999999999999.99999999", Decimal("999999999999.99999999")),
        ("10.10000000", Decimal("10.1")),
    ],
)
def test_parse_valid(text: str, expected: Decimal) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (1.5, "decimal strings"),
        (1, "decimal strings"),
        (None, "decimal strings"),
        ("0", "greater than zero"),
        ("0.00000000", "greater than zero"),
        ("-1", "plain positive"),
        ("+1", "plain positive"),
        ("1e3", "plain positive"),
        ("1E-8", "plain positive"),
        ("NaN", "plain positive"),
        ("Infinity", "plain positive"),
        ("0.000000001", "at most 8 decimals"),
        ("1.123456789", "at most 8 decimals"),
        ("", "plain positive"),
        (" 1", "plain positive"),
        ("1.", "plain positive"),
        (".5", "plain positive"),
        ("01", "plain positive"),
        ("1000000000000", "plain positive"),
        ("1,5", "plain positive"),
        ("\u0661", "plain positive"),  # ARABIC-INDIC DIGIT ONE: Decimal() would accept it
    ],
)
def test_parse_rejects(value: object, why: str) -> None:
    with pytest.raises(InvalidAmount, match=why):
        parse_amount(value)


def test_units_round_trip_exactly() -> None:
    for text in ("0.00000001", "1.5", "123456789012.12345678"):
        amount = parse_amount(text)
        assert from_units(to_units(amount)) == amount
    assert to_units(Decimal("1.5")) == 150_000_000
    assert from_units(1) == Decimal("0.00000001")
    with pytest.raises(InvalidAmount):
        to_units(Decimal("0.000000001"))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("1.50000000"), "1.5"),
        (Decimal(100), "100"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1E+2"), "100"),
        (Decimal(0), "0"),
    ],
)
def test_format(amount: Decimal, text: str) -> None:
    assert format_amount(amount) == text
