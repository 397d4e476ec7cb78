"""How a feed round turns its sources' prices into one: drop outliers, then aggregate.

Pure functions over ``{source name: price}``; the arithmetic is exact (``Decimal`` sums and
differences in a context wide enough never to round, divisions as ``Fraction``), and only the
final result is rounded, to 8 decimals with ROUND_HALF_EVEN.

**Outliers** (``reject_outliers``). With ``m`` the median of the prices and MAD the median of
their absolute deviations ``|x - m|``, a price is rejected when

    |x - m| > max(k * MAD, floor * m)        k = 5, floor = 1 % by default.

The median and MAD are what a few bad sources cannot move, unlike a mean and a standard
deviation. The floor does two things: when all sources but one agree exactly (MAD = 0) the
odd one is still rejected once it is more than 1 % off, and ordinary spreads between
exchanges (a few tenths of a percent) are never rejected however tightly the others agree.
With one or two prices nothing is rejected: there is no majority to side with.

**Methods** (``aggregate``):

- ``median``: the middle price, or the mean of the two middle ones.
- ``mean``: the arithmetic mean.
- ``trimmed_mean``: the mean after dropping the highest and the lowest 20 % of the prices,
  rounded down but at least one from each end when there are three or more (3 or 4 prices:
  one each side; 10 prices: two each side). With one or two prices it is the plain mean.
- ``weighted``: the mean weighted by ``weights[source]``; every source present needs a
  weight (a weight of 0 leaves that source out), and the weights must not all be 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction

MEDIAN = "median"
MEAN = "mean"
TRIMMED_MEAN = "trimmed_mean"
WEIGHTED = "weighted"
METHODS = (MEDIAN, MEAN, TRIMMED_MEAN, WEIGHTED)

DECIMALS = 8
DEFAULT_K = Decimal(5)
DEFAULT_FLOOR = Decimal("0.01")
TRIM = Fraction(1, 5)

# Sums, differences and products of prices fit in 100 digits, so in this context they are
# exact, and the traps prove it instead of rounding silently.
_EXACT = Context(
    prec=100,
    rounding=ROUND_HALF_EVEN,
    traps=[Inexact, InvalidOperation, DivisionByZero, Overflow],
)
_TENTH = Decimal("0.1")


class AggregationError(ValueError):
    """The prices cannot be aggregated as asked; the message says why."""


@dataclass(frozen=True)
class Rejected:
    source: str
    value: Decimal
    reason: str  # e.g. "12.3 % from the median (limit 1.0 %)"


@dataclass(frozen=True)
class Screened:
    kept: dict[str, Decimal]
    rejected: list[Rejected]
    median: Decimal
    limit: Decimal  # the largest distance from the median that was kept


def median(values: Iterable[Decimal]) -> Decimal:
    """The exact median (the mean of the two middle values for an even count).

    Raises:
        AggregationError: no values.
    """
    ordered = sorted(values)
    if not ordered:
        raise AggregationError("no values")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    with localcontext(_EXACT):
        return (ordered[middle - 1] + ordered[middle]) / 2


def reject_outliers(
    values: Mapping[str, Decimal], k: Decimal = DEFAULT_K, floor: Decimal = DEFAULT_FLOOR
) -> Screened:
    """Split ``values`` into the prices kept and those rejected by the rule in the module doc.

    Raises:
        AggregationError: no values, a value that is not a positive finite Decimal, or ``k``
            not positive or ``floor`` negative.
    """
    _check_values(values)
    if not (_is_number(k) and k > 0 and _is_number(floor) and floor >= 0):
        raise AggregationError("k must be positive and floor not negative")
    with localcontext(_EXACT):
        middle = median(values.values())
        deviations = {source: abs(value - middle) for source, value in values.items()}
        limit = max(k * median(deviations.values()), floor * middle)
    kept: dict[str, Decimal] = {}
    rejected: list[Rejected] = []
    for source, value in values.items():
        if deviations[source] > limit:
            reason = f"{_percent(deviations[source], middle)} % from the median"
            reason += f" (limit {_percent(limit, middle)} %)"
            rejected.append(Rejected(source, value, reason))
        else:
            kept[source] = value
    return Screened(kept=kept, rejected=rejected, median=middle, limit=limit)


def aggregate(
    values: Mapping[str, Decimal],
    method: str,
    weights: Mapping[str, Decimal] | None = None,
    *,
    min_values: int = 1,
) -> Decimal:
    """One price from ``values`` by ``method``, rounded to 8 decimals (ROUND_HALF_EVEN).

    Raises:
        AggregationError: fewer than ``min_values`` values, a value that is not a positive
            finite Decimal, an unknown method, ``weighted`` without a weight for every
            source or with a negative or non-finite weight or only zero weights, or a result
            that rounds to 0 at 8 decimals.
    """
    if len(values) < max(min_values, 1):
        raise AggregationError(f"{len(values)} values, at least {max(min_values, 1)} needed")
    _check_values(values)
    ordered = sorted(Fraction(value) for value in values.values())
    if method == MEDIAN:
        result = Fraction(median(values.values()))
    elif method == MEAN:
        result = _mean(ordered)
    elif method == TRIMMED_MEAN:
        cut = max(1, int(len(ordered) * TRIM)) if len(ordered) >= 3 else 0
        result = _mean(ordered[cut : len(ordered) - cut])
    elif method == WEIGHTED:
        result = _weighted(values, weights)
    else:
        raise AggregationError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    rounded = _round(result)
    if rounded == 0:
        raise AggregationError(f"the result rounds to 0 at {DECIMALS} decimals")
    return rounded


def _mean(values: list[Fraction]) -> Fraction:
    return sum(values, Fraction(0)) / len(values)


def _weighted(values: Mapping[str, Decimal], weights: Mapping[str, Decimal] | None) -> Fraction:
    if weights is None:
        raise AggregationError("the weighted method needs weights")
    total = Fraction(0)
    weighted_sum = Fraction(0)
    for source, value in values.items():
        if source not in weights:
            raise AggregationError(f"no weight for source {source!r}")
        weight = weights[source]
        if not (_is_number(weight) and weight >= 0):
            raise AggregationError(f"the weight of {source!r} is not a finite Decimal >= 0")
        total += Fraction(weight)
        weighted_sum += Fraction(weight) * Fraction(value)
    if total == 0:
        raise AggregationError("all weights are 0")
    return weighted_sum / total


def _round(value: Fraction) -> Decimal:
    # round() on a Fraction rounds half to even, exactly.
    units = round(value * 10**DECIMALS)
    return Decimal(units).scaleb(-DECIMALS, _EXACT)


def _percent(part: Decimal, whole: Decimal) -> Decimal:
    return (part * 100 / whole).quantize(_TENTH, rounding=ROUND_HALF_EVEN)


def _is_number(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def _check_values(values: Mapping[str, Decimal]) -> None:
    if not values:
        raise AggregationError("no values")
    for source, value in values.items():
        if not (_is_number(value) and value > 0):
            raise AggregationError(f"the price from {source!r} is not a positive finite Decimal")
