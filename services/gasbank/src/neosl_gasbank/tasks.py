"""The gasbank's Celery tasks: thin wrappers that load, call a service function, answer."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, cast

from celery import Celery
from celery.signals import worker_ready

from neosl import jobs
from neosl.celery_app import ServiceApp
from neosl.dispatch import Dispatcher
from neosl.neo.rpc import NeoRpc, RpcUnavailable
from neosl.resources import Resources
from neosl.tasks import PeriodicTask, ServiceTask
from neosl_gasbank import actions, deposits, withdrawals
from neosl_gasbank.hot_wallet import HotWallet, load_hot_wallet
from neosl_gasbank.metrics import RelayMetrics

# What a settlement pass may decide of a relayed transaction.
SETTLED = ("confirmed", "failed", "expired")


class GasbankResources(Resources):
    """A gasbank process's RPC client for the relay (kept: it knows the network's magic and
    keeps its connections, which a burst of actions would otherwise pay for each time), its
    hot wallet, and the counts of what it settles (``relayed``, one per app)."""

    def __init__(self, app: ServiceApp, relayed: RelayMetrics) -> None:
        super().__init__(app)
        self.relayed = relayed

    @cached_property
    def rpc(self) -> NeoRpc:
        return NeoRpc(self.settings.neo_rpc_urls, client=self.http)

    def new_rpc(self) -> NeoRpc:
        """A client of its own for a withdrawal's pass, on this process's HTTP connections;
        close it (use ``with``)."""
        return NeoRpc(self.settings.neo_rpc_urls, client=self.http)

    @cached_property
    def hot_wallet(self) -> HotWallet:
        return load_hot_wallet(self.settings)

    def count_settled(self, kind: str, counts: Mapping[str, int]) -> None:
        """Count the relayed transactions a settlement pass settled, by outcome."""
        for outcome in SETTLED:
            if counts.get(outcome):
                self.relayed.settled.labels(kind, outcome).inc(counts[outcome])

    def close(self) -> None:
        if "rpc" in self.__dict__:
            self.rpc.close()
        super().close()


class GasbankTask(ServiceTask):
    abstract = True

    @property
    def resources(self) -> GasbankResources:
        return cast(GasbankResources, self.service.resources)


class PeriodicGasbankTask(PeriodicTask, GasbankTask):
    abstract = True


class ChainTask(GasbankTask):
    """A one-off task that talks to the Neo node: an RPC outage is retried with backoff.

    Whatever outlasts the retries is picked up by the periodic tasks; these tasks are
    written to be safe to run again.
    """

    abstract = True
    autoretry_for = (RpcUnavailable,)
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 10


def register(app: Celery) -> None:
    @app.task(name=jobs.SEND_WITHDRAWAL.name, base=ChainTask, bind=True, shared=False)
    def send_withdrawal(self: ChainTask, transaction_id: int) -> str:
        r = self.resources
        with r.new_rpc() as rpc:
            return withdrawals.send(r.sessions, rpc, self.settings, r.hot_wallet, transaction_id)

    @app.task(
        name=jobs.RECONCILE_WITHDRAWALS.name, base=PeriodicGasbankTask, bind=True, shared=False
    )
    def reconcile_withdrawals(self: PeriodicGasbankTask) -> dict[str, int]:
        r = self.resources
        with r.new_rpc() as rpc:
            counts = withdrawals.reconcile(r.sessions, rpc, self.settings, r.hot_wallet)
        r.count_settled("withdrawal", counts)
        return dict(counts)

    @app.task(name=jobs.RELAY_ACTION.name, base=ChainTask, bind=True, shared=False)
    def relay_action(self: ChainTask, action_id: int) -> str:
        r = self.resources
        return actions.relay_action(r.sessions, r.rpc, self.settings, r.hot_wallet, action_id)

    @app.task(name=jobs.RECONCILE_ACTIONS.name, base=PeriodicGasbankTask, bind=True, shared=False)
    def reconcile_actions(self: PeriodicGasbankTask) -> dict[str, int]:
        r = self.resources
        counts = actions.reconcile(r.sessions, r.rpc, self.settings, r.hot_wallet)
        r.count_settled("action", counts)
        return dict(counts)

    @app.task(name=jobs.APPLY_DEPOSITS.name, base=PeriodicGasbankTask, bind=True, shared=False)
    def apply_deposits(self: PeriodicGasbankTask) -> dict[str, int]:
        address = self.resources.hot_wallet.address
        total: dict[str, int] = {}
        while True:
            with self.sessions() as session:
                counts = deposits.apply_deposits(session, address)
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
            if not counts["remaining"]:
                return total

    @worker_ready.connect(weak=False)
    def recover(sender: Any = None, **_kwargs: Any) -> None:
        # Whatever a crashed worker left half-done is settled as soon as we are back.
        if sender is not None and getattr(sender, "app", None) is app:
            # Nudges that name no rows: nothing to wait for a commit for.
            dispatcher = Dispatcher(app)
            dispatcher.send(jobs.RECONCILE_WITHDRAWALS)
            dispatcher.send(jobs.RECONCILE_ACTIONS)
            dispatcher.send(jobs.APPLY_DEPOSITS)
