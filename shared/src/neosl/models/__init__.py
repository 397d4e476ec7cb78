"""Typed SQLAlchemy models mirroring db/schema.sql (a test fails on any drift)."""

from neosl.models.accounts import User
from neosl.models.base import Base
from neosl.models.chain import ChainCursor, ChainEvent
from neosl.models.functions import (
    Execution,
    ExecutionLog,
    Function,
    FunctionSecret,
    FunctionVersion,
    Secret,
)
from neosl.models.gas import (
    DeploymentFact,
    GasAccount,
    GasAddressChallenge,
    IdempotencyKey,
    Transaction,
    UnmatchedDeposit,
)
from neosl.models.neo import NeoAction, NeoSigner
from neosl.models.pricefeeds import (
    PriceData,
    PriceFeed,
    PriceRound,
    SourceListing,
    SourceMarket,
)
from neosl.models.triggers import Trigger, TriggerEvent

__all__ = [
    "Base",
    "ChainCursor",
    "ChainEvent",
    "DeploymentFact",
    "Execution",
    "ExecutionLog",
    "Function",
    "FunctionSecret",
    "FunctionVersion",
    "GasAccount",
    "GasAddressChallenge",
    "IdempotencyKey",
    "NeoAction",
    "NeoSigner",
    "PriceData",
    "PriceFeed",
    "PriceRound",
    "Secret",
    "SourceListing",
    "SourceMarket",
    "Transaction",
    "Trigger",
    "TriggerEvent",
    "UnmatchedDeposit",
    "User",
]
