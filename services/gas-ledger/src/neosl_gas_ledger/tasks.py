"""The gas-ledger's Celery tasks: thin wrappers that load, call a service function, answer."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_ready

from neosl import jobs, ledger
from neosl.money import format_amount, parse_amount
from neosl.tasks import ChainTask, ServiceTask
from neosl_ledger import deposits, withdrawals
from neosl_ledger.hot_wallet import load_hot_wallet


def register(app: Celery) -> None:
    @app.task(name=jobs.CHARGE.name, base=ServiceTask, bind=True, shared=False)
    def charge(
        self: ServiceTask, user_id: int, type: str, amount: str, reference: str
    ) -> dict[str, Any]:
        with self.sessions() as session:
            result = ledger.charge(session, user_id, type, parse_amount(amount), reference)
        return {
            "status": result.status.value,
            "transaction_id": result.transaction_id,
            "balance": None if result.balance is None else format_amount(result.balance),
        }

    @app.task(name=jobs.SEND_WITHDRAWAL.name, base=ChainTask, bind=True, shared=False)
    def send_withdrawal(self: ChainTask, transaction_id: int) -> str:
        with self.rpc() as rpc:
            return withdrawals.send(
                self.sessions, rpc, self.settings, load_hot_wallet(self.settings), transaction_id
            )

    @app.task(name=jobs.RECONCILE_WITHDRAWALS.name, base=ChainTask, bind=True, shared=False)
    def reconcile_withdrawals(self: ChainTask) -> dict[str, int]:
        with self.rpc() as rpc:
            counts = withdrawals.reconcile(
                self.sessions, rpc, self.settings, load_hot_wallet(self.settings)
            )
        return dict(counts)

    @app.task(name=jobs.APPLY_DEPOSITS.name, base=ServiceTask, bind=True, shared=False)
    def apply_deposits(self: ServiceTask) -> dict[str, int]:
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
            app.send_task(jobs.RECONCILE_WITHDRAWALS.name, queue=jobs.LEDGER_QUEUE)
            app.send_task(jobs.APPLY_DEPOSITS.name, queue=jobs.LEDGER_QUEUE)
