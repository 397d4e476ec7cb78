"""What an execution costs (documented in the README; operators set the prices).

    price = NSL_FUNCTION_BASE_FEE + NSL_FUNCTION_FEE_PER_100MS * (started 100 ms of run time)

Both default to 0 (free). An execution is paid before it runs: invoking it, or a trigger
firing it, holds its most expensive run (``execution_hold``: the price of running until its
timeout) as a pending charge of type ``function``, reference ``execution:<id>``; the executor
settles the hold to the price of what really ran, and the rest is refunded.
"""

from __future__ import annotations

import math
from decimal import Decimal

from neosl.config import Settings


def execution_price(settings: Settings, duration_ms: int) -> Decimal:
    started = math.ceil(max(duration_ms, 0) / 100)
    return settings.function_base_fee + settings.function_fee_per_100ms * started


def execution_hold(settings: Settings, timeout_seconds: int) -> Decimal:
    """The most an execution with this timeout can cost: what invoking it holds."""
    return execution_price(settings, timeout_seconds * 1000)


def hold_parameters(settings: Settings) -> dict[str, Decimal]:
    """The bind parameters of the statements that hold in SQL, many executions at once
    (invoking, firing triggers): ``:base_fee + :fee_per_100ms * 10 * timeout`` is
    ``execution_hold`` of each ``timeout`` (tests compare them)."""
    return {
        "base_fee": settings.function_base_fee,
        "fee_per_100ms": settings.function_fee_per_100ms,
    }


def charge_reference(execution_id: int) -> str:
    return f"execution:{execution_id}"
