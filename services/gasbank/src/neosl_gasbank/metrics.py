"""What the gasbank counts (relayed transactions settled) and the hot wallet's balance."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from neosl.gas.money import from_units
from neosl.metrics import AtMostEvery, ScrapeTimeCollector
from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable

log = logging.getLogger(__name__)


class RelayMetrics:
    """Relayed transactions (actions and withdrawals) settled, by kind and outcome."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.settled = Counter(
            "neosl_relay_settled",
            "Relayed transactions settled from the chain, by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )


# The node is asked for the hot wallet's balance at most this often per process.
HOT_WALLET_EVERY_SECONDS = 15.0


class HotWalletCollector(ScrapeTimeCollector):
    """The GAS the hot wallet holds on chain, asked of the node at most every 15 s."""

    def __init__(self, rpc_urls: tuple[str, ...], address: str) -> None:
        self.rpc_urls = rpc_urls
        self.address = address
        self._balance: AtMostEvery[float] = AtMostEvery(HOT_WALLET_EVERY_SECONDS)

    def _read_balance(self) -> float | None:
        try:
            with NeoRpc(self.rpc_urls, timeout=5) as rpc:
                return float(from_units(rpc.gas_balance(self.address)))
        except (RpcError, RpcUnavailable) as exc:
            log.warning("metrics: hot wallet balance unknown: %s", exc)
            return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        balance = self._balance.get(self._read_balance)
        if balance is not None:
            yield GaugeMetricFamily(
                "neosl_hot_wallet_balance_gas", "GAS the hot wallet holds on chain", value=balance
            )
