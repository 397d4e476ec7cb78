"""The contract between services: queue names, task names and payload shapes.

Services never import one another. A producer sends ``job.name`` with ``job.payload(...)``
onto ``job.queue``; the consuming service registers a task under the same name. Payloads
are plain JSON (ids and strings), never ORM objects. A job that names rows is queued on the
transaction that wrote them (``neosl.dispatch.Dispatcher.send_after_commit``) and sent only
once it commits; each one has a periodic safety net for a send lost after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXECUTOR_QUEUE = "executor"
SCHEDULER_QUEUE = "scheduler"
PRICEFEED_QUEUE = "pricefeed"
GASBANK_QUEUE = "gasbank"

ALL_QUEUES = (EXECUTOR_QUEUE, SCHEDULER_QUEUE, PRICEFEED_QUEUE, GASBANK_QUEUE)


@dataclass(frozen=True)
class Job:
    name: str
    queue: str
    # Payload keys the consumer requires; checked on the producing side by payload().
    fields: tuple[str, ...] = ()

    def payload(self, **values: Any) -> dict[str, Any]:
        """Build the keyword arguments for this job.

        Raises:
            ValueError: a required field is missing or an unknown one was given.
        """
        missing = set(self.fields) - values.keys()
        unknown = values.keys() - set(self.fields)
        if missing or unknown:
            raise ValueError(f"{self.name}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return dict(values)


def ping_job(queue: str) -> Job:
    """Every worker service answers this on its own queue; used by health checks."""
    return Job(name=f"neosl.{queue}.ping", queue=queue)


PING_JOBS = {queue: ping_job(queue) for queue in ALL_QUEUES}

# -- gasbank: the gas bank's chain side -------------------------------------------------------
# Sign and broadcast a pending withdrawal (its transactions row id). Safety net: the
# reconcile pass (re-)sends every pending withdrawal not known to be sent.
SEND_WITHDRAWAL = Job("neosl.gasbank.send_withdrawal", GASBANK_QUEUE, ("transaction_id",))
# Settle every pending withdrawal: confirm, refund, or re-send the same signed transaction.
RECONCILE_WITHDRAWALS = Job("neosl.gasbank.reconcile_withdrawals", GASBANK_QUEUE)
# Relay one queued on-chain action (its neo_actions row id): test-invoke, hold its fees,
# sign once, store, send. Safety net: the reconcile pass relays queued actions again.
RELAY_ACTION = Job("neosl.gasbank.relay_action", GASBANK_QUEUE, ("action_id",))
# Settle every pending action from the chain (charge its real fees, or release them), and
# relay again queued ones whose message was lost.
RECONCILE_ACTIONS = Job("neosl.gasbank.reconcile_actions", GASBANK_QUEUE)
# Credit deposits the chain follower recorded; sent by the follower after it stores events.
APPLY_DEPOSITS = Job("neosl.gasbank.apply_deposits", GASBANK_QUEUE)

# -- executor ------------------------------------------------------------------------------
# Run one queued execution (its executions row id). At most once: the executor claims the row
# (queued -> running) before running it, so a redelivered or re-sent message runs nothing.
# Safety net: the reaper re-sends executions left queued too long.
RUN_EXECUTION = Job("neosl.executor.run_execution", EXECUTOR_QUEUE, ("execution_id",))
# Finish executions abandoned by a dead executor and re-send those whose message was lost.
REAP_EXECUTIONS = Job("neosl.executor.reap_executions", EXECUTOR_QUEUE)
# Delete executions and their logs older than the retention.
PURGE_EXECUTIONS = Job("neosl.executor.purge_executions", EXECUTOR_QUEUE)

# -- chain follower (owned by the scheduler service) -------------------------------
# Read new blocks from the durable cursor and store the notifications subscribers asked for.
FOLLOW_CHAIN = Job("neosl.scheduler.follow_chain", SCHEDULER_QUEUE)

# -- triggers (the scheduler) ---------------------------------------------------------
# Evaluate the price triggers of a feed; the pricefeed worker sends it after storing a round.
# Safety net: the scheduler's clock evaluates every price trigger periodically.
EVALUATE_PRICE_TRIGGERS = Job(
    "neosl.scheduler.evaluate_price_triggers", SCHEDULER_QUEUE, ("feed_id",)
)

# -- pricefeed -------------------------------------------------------------------------------
# Run one queued price round (its price_rounds row id): ask the feed's sources, price it,
# store it, and queue its publication when due. The pricefeed clock sends it with the round
# row it creates for a feed's slot. At most once: the worker claims the row (queued ->
# running) before asking anything, so a redelivered or re-sent message runs nothing. Safety
# net: the clock fails a round left queued or running too long, and the feed's next slot
# comes (a late price is worth less than the next one).
RUN_ROUND = Job("neosl.pricefeed.run_round", PRICEFEED_QUEUE, ("round_id",))
# Fetch one exchange source's market list and store it (``neosl_pricefeed.listings``). The
# pricefeed clock sends it when the source's list is due (``NSL_PRICE_LISTING_REFRESH_SECONDS``),
# having moved its ``checked_at`` on, so replicas and redeliveries refresh a list at most once
# per period; a lost message is made up for by the next period.
REFRESH_LISTING = Job("neosl.pricefeed.refresh_listing", PRICEFEED_QUEUE, ("source",))

ALL_JOBS = (
    *PING_JOBS.values(),
    SEND_WITHDRAWAL,
    RECONCILE_WITHDRAWALS,
    RELAY_ACTION,
    RECONCILE_ACTIONS,
    APPLY_DEPOSITS,
    RUN_EXECUTION,
    REAP_EXECUTIONS,
    PURGE_EXECUTIONS,
    FOLLOW_CHAIN,
    EVALUATE_PRICE_TRIGGERS,
    RUN_ROUND,
    REFRESH_LISTING,
)
