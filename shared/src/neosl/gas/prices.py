"""What an execution costs (documented in the README; operators set the prices).

    price = NSL_FUNCTION_BASE_FEE + NSL_FUNCTION_FEE_PER_100MS * (started 100 ms of run time)

Both default to 0 (free). The executor charges every finished execution through
``neosl.gas.ledger.charge`` (type ``function``, reference ``execution:<id>``), so it is charged
once whatever retries or reapers do.
"""

from __future__ import annotations

import math
from decimal import Decimal

from neosl.config import Settings


def execution_price(settings: Settings, duration_ms: int) -> Decimal:
    started = math.ceil(max(duration_ms, 0) / 100)
    return settings.function_base_fee + settings.function_fee_per_100ms * started


def cheapest_execution(settings: Settings) -> Decimal:
    """The least any execution costs (one started 100 ms); invoking needs this much."""
    return execution_price(settings, 1)


def charge_reference(execution_id: int) -> str:
    return f"execution:{execution_id}"
