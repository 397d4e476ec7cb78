"""Executions between the producers and the executor: dispatching a tenant's fair share,
and announcing a finished execution to whoever waits for it (``?wait=N``).

**Fair share.** A tenant has at most ``NSL_EXECUTIONS_PER_TENANT`` executions dispatched
(their job sent to the executor's queue, or running) at once. Producers (an invoke, a
trigger firing) insert executions ``queued`` and call ``release`` in the same transaction;
the rest wait in PostgreSQL, and ``release`` is called again when one of the tenant's
executions ends (the executor's finish, in its transaction), so a tenant's backlog never
stands in the broker's queue in front of other tenants' work: the queue holds at most a
share of each tenant's. The reaper releases waiting executions too (a safety net). Jobs are
sent after the commit; the executor's claim keeps every execution at most once.

**Announcing.** The executor pushes to a short-lived Redis list when the execution's
terminal status commits (with the jobs the commit releases); the API blocks on that list.
A push that happens before anyone waits stays in the list for a minute, so the waiter still
sees it.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from neosl import jobs
from neosl.dispatch import Dispatcher

# pg_advisory_xact_lock class of a tenant's dispatched executions (taken as
# ``neosl.db.lock_tenant`` takes one), listed in the API's ``TenantLock`` with every other.
DISPATCH_LOCK = 0x6578


# The tenant's lock, then the count and the dispatch with a fresh snapshot: one round trip
# (db/migrations/0013_release_executions.sql).
_RELEASE = text("SELECT release_executions(:lock_class, :user_id, :share)")


def release(
    session: Session, dispatcher: Dispatcher, user_ids: Iterable[int], share: int
) -> list[int]:
    """Dispatch the waiting executions of ``user_ids`` that fit in each tenant's ``share``,
    oldest first; their jobs are sent after the caller commits. Returns their ids.

    Each tenant's lock is taken before it is counted (the count, in a statement of its own,
    sees what a concurrent release committed): two releases never exceed the share.
    """
    released: list[int] = []
    connection = session.connection()
    for user_id in sorted(set(user_ids)):
        params = {"lock_class": DISPATCH_LOCK, "user_id": user_id, "share": share}
        released.extend(connection.execute(_RELEASE, params).scalars())
    if released:
        dispatcher.send_many_after_commit(
            session, jobs.RUN_EXECUTION, [{"execution_id": i} for i in sorted(released)]
        )
    return released


def resend_dispatched(session: Session, dispatcher: Dispatcher, user_id: int) -> list[int]:
    """Send again, after the caller commits, the jobs of the tenant's dispatched executions
    not claimed yet; their ids.

    For a commit that went through while its answer was cut off (a database restart): the
    executions it dispatched have no job unless it is sent again (else only the reaper's
    requeue, a minute later, would find them). The claim makes a second copy harmless.
    """
    ids = list(
        session.scalars(
            text(
                "SELECT id FROM executions WHERE user_id = :user_id AND status = 'queued' "
                "AND dispatched_at IS NOT NULL ORDER BY id"
            ),
            {"user_id": user_id},
        )
    )
    if ids:
        dispatcher.send_many_after_commit(
            session, jobs.RUN_EXECUTION, [{"execution_id": i} for i in ids]
        )
    return ids


def waiting_tenants(session: Session, limit: int = 500) -> list[int]:
    """Tenants with executions waiting for a slot (for the reaper's safety net)."""
    return list(
        session.scalars(
            text(
                "SELECT DISTINCT user_id FROM executions "
                "WHERE status = 'queued' AND dispatched_at IS NULL LIMIT :limit"
            ),
            {"limit": limit},
        )
    )


_TTL_SECONDS = 60


def done_key(execution_id: int) -> str:
    return f"nsl:execution:done:{execution_id}"


def announce_after_commit(session: Session, dispatcher: Dispatcher, execution_id: int) -> None:
    """Wake anyone waiting for ``execution_id`` once ``session`` commits its terminal status,
    in the same round trip as the jobs the commit sends."""
    dispatcher.push_after_commit(session, done_key(execution_id), "1", _TTL_SECONDS)


def wait_done(redis: Redis, execution_id: int, seconds: float) -> bool:
    """Block up to ``seconds`` for the announcement; True if it came."""
    if seconds <= 0:
        return False
    return redis.blpop([done_key(execution_id)], timeout=seconds) is not None
