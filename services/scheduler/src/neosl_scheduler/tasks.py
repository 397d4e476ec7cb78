"""The scheduler's tasks and periodic schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from celery import Celery

from neosl import jobs
from neosl.config import Settings
from neosl.neo.rpc import NeoRpc
from neosl.onchain.blocks import subscriptions
from neosl.resources import Resources
from neosl.tasks import PeriodicTask, ServiceTask
from neosl_scheduler import follower, prices


class SchedulerResources(Resources):
    """A scheduler process's resources: a Neo RPC client for each pass of the follower."""

    def new_rpc(self) -> NeoRpc:
        """A client of its own for one pass, on this process's HTTP connections; close it
        (use ``with``)."""
        return NeoRpc(self.settings.neo_rpc_urls, client=self.http)


class SchedulerTask(PeriodicTask):
    abstract = True

    @property
    def resources(self) -> SchedulerResources:
        return cast(SchedulerResources, self.service.resources)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the embedded beat (``--beat``; run one scheduler worker with it) sends when."""

    # Each tick expires when the next one is due: ticks sent while the workers were down
    # must not pile up and run back to back when they return (the next tick does the work).
    def every(job: jobs.Job, seconds: float) -> dict[str, Any]:
        return {
            "task": job.name,
            "schedule": seconds,
            "options": {"queue": job.queue, "expires": max(seconds, 1.0)},
        }

    return {
        "follow-chain": every(jobs.FOLLOW_CHAIN, settings.follower_interval),
        "reconcile-withdrawals": every(jobs.RECONCILE_WITHDRAWALS, 5.0),
        "reconcile-actions": every(jobs.RECONCILE_ACTIONS, settings.follower_interval),
        # A safety net: the follower tells the gasbank at once when deposits arrive.
        "apply-deposits": every(jobs.APPLY_DEPOSITS, 30.0),
        "reap-executions": every(jobs.REAP_EXECUTIONS, 10.0),
        "purge-executions": every(jobs.PURGE_EXECUTIONS, 3600.0),
    }


def register(app: Celery, settings: Settings) -> None:
    app.conf.beat_schedule = beat_schedule(settings)

    @app.task(
        name=jobs.FOLLOW_CHAIN.name, base=SchedulerTask, bind=True, shared=False, ignore_result=True
    )
    def follow_chain(self: SchedulerTask) -> dict[str, Any]:
        with self.resources.new_rpc() as rpc:
            result = follower.follow(
                self.sessions,
                rpc,
                subscriptions(self.settings),
                self.dispatcher,
                batch=self.settings.follower_batch_blocks,
                triggers=self.settings,
            )
        return {
            "blocks": result.blocks,
            "events": result.events,
            "fired": result.fired,
            "lag": result.lag,
        }

    @app.task(
        name=jobs.EVALUATE_PRICE_TRIGGERS.name,
        base=ServiceTask,
        bind=True,
        shared=False,
        ignore_result=True,
    )
    def evaluate_price_triggers(self: ServiceTask, feed_id: int) -> int:
        with self.sessions() as session:
            fired = prices.evaluate(
                session, self.settings, self.dispatcher, dt.datetime.now(dt.UTC), feed_id
            )
            session.commit()
        return fired
