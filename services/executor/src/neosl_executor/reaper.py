"""Executions nobody will finish: abandoned by a dead executor, or whose message was lost.

- ``running`` past ``start_time + timeout + grace``: the executor that claimed it died (a
  live one stops every execution at its timeout). It ends ``failed`` ("worker lost"); that
  is the service's fault, not the tenant's, so its hold is released, not charged.
- ``queued`` for longer than the requeue delay: its message was taken by an executor that
  died before claiming it (the broker would hand it back only after its visibility timeout,
  an hour). The job is sent again; the claim makes a second copy harmless.
- ``queued`` and waiting for a slot of its tenant (fair share) while the tenant has one free:
  dispatched (``functions.executions.release``; normally the end of another execution does).
- Older than the retention: deleted with its logs.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.executions import release, waiting_tenants
from neosl.models import Execution
from neosl_executor.runner import finish, lost_outcome

_BATCH = 500


def reap(
    sessions: sessionmaker[Session],
    settings: Settings,
    dispatcher: Dispatcher,
    now: dt.datetime | None = None,
) -> Counter[str]:
    """Finish abandoned executions and re-send lost ones; the counts say how many."""
    now = now or dt.datetime.now(dt.UTC)
    counts: Counter[str] = Counter()
    grace = dt.timedelta(seconds=settings.execution_reap_grace_seconds)
    with sessions() as session:
        abandoned = session.execute(
            select(Execution.id, Execution.start_time, Execution.timeout)
            .where(
                Execution.status == "running",
                Execution.start_time
                < now - grace - func.make_interval(0, 0, 0, 0, 0, 0, Execution.timeout),
            )
            .order_by(Execution.id)
            .limit(_BATCH)
        ).all()
    for execution_id, start_time, timeout in abandoned:
        with sessions() as session:
            lost = lost_outcome(start_time, timeout, now)
            if finish(session, settings, execution_id, lost, dispatcher=dispatcher, billed=False):
                counts["lost"] += 1
    requeue_before = now - dt.timedelta(seconds=settings.execution_requeue_seconds)
    with sessions() as session:
        # updated_at moves with each re-send: one re-send per requeue delay, not per tick.
        stale = session.scalars(
            update(Execution)
            .where(
                Execution.status == "queued",
                # Only those whose job was sent: the waiting ones have none yet.
                Execution.dispatched_at.is_not(None),
                Execution.updated_at < requeue_before,
                Execution.id.in_(
                    select(Execution.id)
                    .where(
                        Execution.status == "queued",
                        Execution.dispatched_at.is_not(None),
                        Execution.created_at < requeue_before,
                    )
                    .order_by(Execution.id)
                    .limit(_BATCH)
                ),
            )
            .values(updated_at=func.now())
            .returning(Execution.id)
        ).all()
        for execution_id in stale:
            dispatcher.send_after_commit(session, jobs.RUN_EXECUTION, execution_id=execution_id)
        session.commit()
    counts["requeued"] += len(stale)
    # A safety net for fair share: waiting executions of tenants with a free slot (a
    # release missed, or the share raised) are dispatched.
    with sessions() as session:
        tenants = waiting_tenants(session)
        released = release(session, dispatcher, tenants, settings.executions_per_tenant)
        session.commit()
    counts["released"] += len(released)
    return counts


def purge(
    sessions: sessionmaker[Session], settings: Settings, now: dt.datetime | None = None
) -> int:
    """Delete executions (and, by cascade, their logs) older than the retention."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=settings.execution_retention_days)
    total = 0
    while True:
        with sessions() as session:
            batch = select(Execution.id).where(Execution.created_at < cutoff).limit(_BATCH)
            deleted = len(
                session.scalars(
                    delete(Execution).where(Execution.id.in_(batch)).returning(Execution.id)
                ).all()
            )
            session.commit()
        total += deleted
        if deleted < _BATCH:
            return total
