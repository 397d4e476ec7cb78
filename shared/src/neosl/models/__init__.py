"""Typed SQLAlchemy models mirroring db/schema.sql (a test fails on any drift)."""

from neosl.models.accounts import User
from neosl.models.base import Base
from neosl.models.functions import Execution, ExecutionLog, Function, FunctionSecret, Secret
from neosl.models.gas import GasAccount, Transaction
from neosl.models.pricefeeds import PriceData, PriceFeed
from neosl.models.triggers import Trigger, TriggerEvent

__all__ = [
    "Base",
    "Execution",
    "ExecutionLog",
    "Function",
    "FunctionSecret",
    "GasAccount",
    "PriceData",
    "PriceFeed",
    "Secret",
    "Transaction",
    "Trigger",
    "TriggerEvent",
    "User",
]
