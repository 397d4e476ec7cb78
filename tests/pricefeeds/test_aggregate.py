from __future__ import annotations

from decimal import Decimal

import pytest

from neosl_pricefeed.aggregate import (
    MEAN,
    MEDIAN,
    TRIMMED_MEAN,
    WEIGHTED,
    AggregationError,
    aggregate,
    median,
    reject_outliers,
)


def prices(*values: str) -> dict[str, Decimal]:
    return {f"s{i}": Decimal(value) for i, value in enumerate(values)}


def test_median_odd_and_even() -> None:
    assert median([Decimal(3), Decimal(1), Decimal(2)]) == Decimal(2)
    assert median([Decimal("1.1"), Decimal("1.2")]) == Decimal("1.15")
    with pytest.raises(AggregationError, match="no values"):
        median([])


@pytest.mark.parametrize(
    ("method", "values", "expected"),
    [
        (MEDIAN, ("10", "11", "12"), "11.00000000"),
        (MEDIAN, ("10", "11", "12", "13"), "11.50000000"),
        (MEDIAN, ("12.5",), "12.50000000"),
        (MEAN, ("10", "11", "12", "13"), "11.50000000"),
        (MEAN, ("1", "1", "2"), "1.33333333"),
        (MEAN, ("2", "2", "1"), "1.66666667"),
        # 5 values: 20 % is one from each end.
        (TRIMMED_MEAN, ("1", "10", "11", "12", "100"), "11.00000000"),
        # 3 and 4 values: at least one from each end.
        (TRIMMED_MEAN, ("1", "10", "100"), "10.00000000"),
        (TRIMMED_MEAN, ("1", "10", "12", "100"), "11.00000000"),
        # 10 values: two from each end.
        (
            TRIMMED_MEAN,
            ("1", "2", "10", "10", "10", "10", "10", "10", "50", "60"),
            "10.00000000",
        ),
        # 1 or 2 values: nothing to trim.
        (TRIMMED_MEAN, ("10", "12"), "11.00000000"),
    ],
)
def test_methods(method: str, values: tuple[str, ...], expected: str) -> None:
    result = aggregate(prices(*values), method)

    assert result == Decimal(expected)
    assert str(result) == expected  # always 8 decimals


def test_weighted() -> None:
    values = {"binance": Decimal("10"), "okx": Decimal("11"), "coingecko": Decimal("13")}
    weights = {
        "binance": Decimal(2),
        "okx": Decimal(1),
        "coingecko": Decimal(1),
        "other": Decimal(9),
    }

    assert aggregate(values, WEIGHTED, weights) == Decimal("11.00000000")


def test_weighted_zero_weight_leaves_a_source_out() -> None:
    values = {"a": Decimal("10"), "b": Decimal("1000")}

    assert aggregate(values, WEIGHTED, {"a": Decimal(1), "b": Decimal(0)}) == Decimal(10)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (None, "needs weights"),
        ({"a": Decimal(1)}, "no weight for source 'b'"),
        ({"a": Decimal(1), "b": Decimal(-1)}, "weight of 'b'"),
        ({"a": Decimal(1), "b": Decimal("NaN")}, "weight of 'b'"),
        ({"a": Decimal(0), "b": Decimal(0)}, "all weights are 0"),
    ],
)
def test_weighted_needs_a_weight_per_source(
    weights: dict[str, Decimal] | None, message: str
) -> None:
    with pytest.raises(AggregationError, match=message):
        aggregate({"a": Decimal(1), "b": Decimal(2)}, WEIGHTED, weights)


def test_arithmetic_is_exact_decimal() -> None:
    # Binary floats would give 0.30000000000000004 for the sum and drift in the mean.
    values = prices("0.1", "0.2", "0.30000001")

    assert aggregate(values, MEAN) == Decimal("0.20000000")
    assert aggregate(prices("0.00001234", "0.00001236"), MEDIAN) == Decimal("0.00001235")


def test_rounding_is_half_even_at_8_decimals() -> None:
    assert aggregate(prices("1.000000005"), MEDIAN) == Decimal("1.00000000")
    assert aggregate(prices("1.000000015"), MEDIAN) == Decimal("1.00000002")
    assert aggregate(prices("1.000000025"), MEDIAN) == Decimal("1.00000002")
    # The exact mean is 1.000000005, a tie: it rounds to even, not up.
    assert aggregate(prices("1.00000000", "1.00000001"), MEAN) == Decimal("1.00000000")


def test_too_few_values() -> None:
    with pytest.raises(AggregationError, match="0 values"):
        aggregate({}, MEDIAN)
    with pytest.raises(AggregationError, match="2 values, at least 3 needed"):
        aggregate(prices("1", "2"), MEDIAN, min_values=3)
    assert aggregate(prices("1", "2", "3"), MEDIAN, min_values=3) == Decimal(2)


@pytest.mark.parametrize("bad", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")])
def test_values_must_be_positive_finite(bad: Decimal) -> None:
    with pytest.raises(AggregationError, match="'s1'"):
        aggregate({"s0": Decimal(1), "s1": bad}, MEAN)


def test_unknown_method() -> None:
    with pytest.raises(AggregationError, match="unknown method 'mode'"):
        aggregate(prices("1"), "mode")


def test_a_result_below_8_decimals_is_refused() -> None:
    with pytest.raises(AggregationError, match="rounds to 0"):
        aggregate(prices("0.000000001"), MEDIAN)


def test_outlier_far_from_the_median_is_rejected() -> None:
    values = prices("10.00", "10.02", "9.98", "10.01", "12.30")

    screened = reject_outliers(values)

    assert screened.median == Decimal("10.01")
    assert set(screened.kept) == {"s0", "s1", "s2", "s3"}
    [rejected] = screened.rejected
    assert (rejected.source, rejected.value) == ("s4", Decimal("12.30"))
    assert rejected.reason == "22.9 % from the median (limit 1.0 %)"


def test_mad_zero_still_rejects_a_value_beyond_the_floor() -> None:
    # All equal but one: MAD is 0, so k * MAD alone would reject even a tiny difference.
    values = prices("10", "10", "10", "10.5")

    screened = reject_outliers(values)

    assert screened.limit == Decimal("0.10")
    assert [r.source for r in screened.rejected] == ["s3"]
    assert screened.rejected[0].reason == "5.0 % from the median (limit 1.0 %)"


def test_mad_zero_keeps_a_value_within_the_floor() -> None:
    screened = reject_outliers(prices("10", "10", "10", "10.09"))

    assert screened.rejected == []
    assert len(screened.kept) == 4


def test_ordinary_spreads_are_kept_however_tight_the_others_agree() -> None:
    # MAD is tiny, but nothing is more than 1 % off: the floor keeps them all.
    screened = reject_outliers(prices("10.000", "10.001", "10.000", "10.001", "10.08"))

    assert screened.rejected == []


def test_k_times_mad_rejects_when_sources_disagree_widely() -> None:
    # Spread-out values: MAD = 1.5, so the limit is 7.5 (k = 5), well above the 1 % floor.
    values = prices("100", "101", "99", "102", "98", "120")

    screened = reject_outliers(values)

    assert screened.limit == Decimal("7.5")
    assert [r.source for r in screened.rejected] == ["s5"]
    assert reject_outliers(values, k=Decimal(20)).rejected == []


def test_floor_is_configurable() -> None:
    values = prices("10", "10", "10", "10.5")

    assert reject_outliers(values, floor=Decimal("0.10")).rejected == []
    assert len(reject_outliers(values, floor=Decimal("0.001")).rejected) == 1


@pytest.mark.parametrize("values", [prices("10"), prices("10", "20")])
def test_one_or_two_values_are_never_rejected(values: dict[str, Decimal]) -> None:
    assert reject_outliers(values).rejected == []


def test_reject_outliers_checks_its_input() -> None:
    with pytest.raises(AggregationError, match="no values"):
        reject_outliers({})
    with pytest.raises(AggregationError, match="k must be positive"):
        reject_outliers(prices("1", "2", "3"), k=Decimal(0))
    with pytest.raises(AggregationError, match="floor not negative"):
        reject_outliers(prices("1", "2", "3"), floor=Decimal("-0.01"))


def test_screen_then_aggregate() -> None:
    values = {
        "binance": Decimal("12.341"),
        "okx": Decimal("12.345"),
        "kucoin": Decimal("12.339"),
        "gate": Decimal("12.350"),
        "htx": Decimal("0.1234"),  # a broken answer, off by a factor of 100
    }

    screened = reject_outliers(values)

    assert [r.source for r in screened.rejected] == ["htx"]
    assert aggregate(screened.kept, MEDIAN) == Decimal("12.34300000")
    assert aggregate(screened.kept, TRIMMED_MEAN) == Decimal("12.34300000")
