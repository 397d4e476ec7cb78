"""The gas-ledger's Celery tasks: thin wrappers that load, call a service function, answer."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from neosl import jobs
from neosl.dispatch import Dispatcher
from neosl.neo.rpc import NeoRpc
from neosl.tasks import ChainTask, PeriodicTask
from neosl_gasbank import actions, deposits, withdrawals
from neosl_gasbank.hot_wallet import load_hot_wallet
from neosl_gasbank.metrics import RelayMetrics

_lock = threading.Lock()

# What a settlement pass may decide of a relayed transaction.
SETTLED = ("confirmed", "failed", "expired")


def relay_rpc(app: Celery) -> NeoRpc:
    """This worker process's RPC client for the relay (kept: it knows the network's magic and
    keeps its connections, which a burst of actions would otherwise pay for each time)."""
    with _lock:
        rpc: NeoRpc | None = app.conf.get("neosl_relay_rpc")
        if rpc is None:
            rpc = NeoRpc(app.conf.neosl_settings.neo_rpc_urls)
            app.conf.neosl_relay_rpc = rpc
        return rpc


def count_settled(app: Celery, kind: str, counts: Mapping[str, int]) -> None:
    """Count the relayed transactions a settlement pass settled, by outcome."""
    relayed: RelayMetrics | None = app.conf.get("neosl_relay_metrics")
    if relayed is None:
        return
    for outcome in SETTLED:
        if counts.get(outcome):
            relayed.settled.labels(kind, outcome).inc(counts[outcome])


def register(app: Celery) -> None:
    @app.task(name=jobs.SEND_WITHDRAWAL.name, base=ChainTask, bind=True, shared=False)
    def send_withdrawal(self: ChainTask, transaction_id: int) -> str:
        with self.rpc() as rpc:
            return withdrawals.send(
                self.sessions, rpc, self.settings, load_hot_wallet(self.settings), transaction_id
            )

    @app.task(name=jobs.RECONCILE_WITHDRAWALS.name, base=PeriodicTask, bind=True, shared=False)
    def reconcile_withdrawals(self: PeriodicTask) -> dict[str, int]:
        with self.rpc() as rpc:
            counts = withdrawals.reconcile(
                self.sessions, rpc, self.settings, load_hot_wallet(self.settings)
            )
        count_settled(self.app, "withdrawal", counts)
        return dict(counts)

    @app.task(name=jobs.RELAY_ACTION.name, base=ChainTask, bind=True, shared=False)
    def relay_action(self: ChainTask, action_id: int) -> str:
        return actions.relay_action(
            self.sessions,
            relay_rpc(self.app),
            self.settings,
            load_hot_wallet(self.settings),
            action_id,
        )

    @app.task(name=jobs.RECONCILE_ACTIONS.name, base=PeriodicTask, bind=True, shared=False)
    def reconcile_actions(self: PeriodicTask) -> dict[str, int]:
        counts = actions.reconcile(
            self.sessions, relay_rpc(self.app), self.settings, load_hot_wallet(self.settings)
        )
        count_settled(self.app, "action", counts)
        return dict(counts)

    @app.task(name=jobs.APPLY_DEPOSITS.name, base=PeriodicTask, bind=True, shared=False)
    def apply_deposits(self: PeriodicTask) -> dict[str, int]:
        address = load_hot_wallet(self.settings).address
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
