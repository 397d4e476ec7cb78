"""The trigger-scheduler's tasks and periodic schedule."""

from __future__ import annotations

from typing import Any

from celery import Celery

from neosl import jobs
from neosl.chain import subscriptions
from neosl.config import Settings
from neosl.tasks import ChainTask
from neosl_scheduler import follower


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the embedded beat (``--beat``; run one scheduler worker with it) sends when."""
    return {
        "follow-chain": {"task": jobs.FOLLOW_CHAIN.name, "schedule": settings.follower_interval},
        "reconcile-withdrawals": {
            "task": jobs.RECONCILE_WITHDRAWALS.name,
            "schedule": 5.0,
            "options": {"queue": jobs.LEDGER_QUEUE},
        },
        # A safety net: the follower tells the ledger at once when deposits arrive.
        "apply-deposits": {
            "task": jobs.APPLY_DEPOSITS.name,
            "schedule": 30.0,
            "options": {"queue": jobs.LEDGER_QUEUE},
        },
    }


def register(app: Celery, settings: Settings) -> None:
    app.conf.beat_schedule = beat_schedule(settings)
    # In-memory schedule: every entry is an interval, nothing worth persisting to a file.
    app.conf.beat_scheduler = "celery.beat:Scheduler"

    @app.task(
        name=jobs.FOLLOW_CHAIN.name, base=ChainTask, bind=True, shared=False, ignore_result=True
    )
    def follow_chain(self: ChainTask) -> dict[str, Any]:
        with self.rpc() as rpc:
            result = follower.follow(
                self.sessions,
                rpc,
                subscriptions(self.settings),
                self.dispatcher,
                batch=self.settings.follower_batch_blocks,
            )
        return {"blocks": result.blocks, "events": result.events, "lag": result.lag}
