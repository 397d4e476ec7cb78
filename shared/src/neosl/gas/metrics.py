"""The gas bank's figures for Prometheus, read at scrape time (API and gasbank)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.gas import ledger
from neosl.metrics import AtMostEvery, ScrapeTimeCollector
from neosl.models import GasAccount, NeoAction, Transaction

log = logging.getLogger(__name__)


# The ledger's sums by type and status and its check (every balance against its
# transactions) read every transaction: they are computed at most this often per process
# and exported from memory in between.
LEDGER_CHECK_SECONDS = 300.0


@dataclass(frozen=True)
class _Books:
    by_kind: list[tuple[str, str, int, Decimal]]
    mismatched: int


class BankCollector(ScrapeTimeCollector):
    """The gas bank: balances, withdrawals pending and actions in flight at every scrape;
    the transactions' sums by type and status and the accounts the ledger check finds wrong
    (``neosl ledger verify``) every ``LEDGER_CHECK_SECONDS`` unless ``books`` is off."""

    def __init__(self, session_factory: sessionmaker[Session], *, books: bool = True) -> None:
        self.session_factory = session_factory
        self.books = books
        self._books: AtMostEvery[_Books] = AtMostEvery(LEDGER_CHECK_SECONDS)

    @staticmethod
    def _read_books(session: Session) -> _Books:
        t = Transaction
        rows = session.execute(
            select(t.type, t.status, func.count(), func.coalesce(func.sum(t.amount), 0))
            .group_by(t.type, t.status)
            .order_by(t.type, t.status)
        ).all()
        mismatched = len(ledger.verify(session))
        return _Books([(a, b, c, Decimal(d)) for a, b, c, d in rows], mismatched)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        t = Transaction
        try:
            with self.session_factory() as session:
                balance = session.scalar(select(func.coalesce(func.sum(GasAccount.balance), 0)))
                pending = session.scalar(
                    select(func.count()).where(t.type == "withdraw", t.status == "pending")
                )
                in_flight = dict(
                    session.execute(
                        select(NeoAction.status, func.count())
                        .where(NeoAction.status.in_(("queued", "pending")))
                        .group_by(NeoAction.status)
                    ).all()
                )
                books = self._books.get(lambda: self._read_books(session)) if self.books else None
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        yield GaugeMetricFamily(
            "neosl_ledger_balance_gas", "GAS the tenants hold in all", value=float(balance or 0)
        )
        yield GaugeMetricFamily(
            "neosl_withdrawals_pending",
            "Withdrawals debited and not yet settled",
            value=pending or 0,
        )
        actions = GaugeMetricFamily(
            "neosl_relay_actions_in_flight",
            "On-chain actions queued or sent and not yet settled",
            labels=["status"],
        )
        for status in ("queued", "pending"):
            actions.add_metric([status], in_flight.get(status, 0))
        yield actions
        if books is None:
            return
        amounts = GaugeMetricFamily(
            "neosl_ledger_transactions_gas",
            "Sum of ledger transactions, GAS, by type and status",
            labels=["type", "status"],
        )
        counts = GaugeMetricFamily(
            "neosl_ledger_transactions",
            "Ledger transactions, by type and status",
            labels=["type", "status"],
        )
        for kind, status, count, amount in books.by_kind:
            amounts.add_metric([kind, status], float(amount))
            counts.add_metric([kind, status], count)
        yield amounts
        yield counts
        yield GaugeMetricFamily(
            "neosl_ledger_mismatched_accounts",
            "Accounts whose balance differs from the sum of their transactions",
            value=books.mismatched,
        )
