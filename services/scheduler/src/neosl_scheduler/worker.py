"""The Celery worker of this service: it fires cron, webhook, price and chain-event triggers.

Start it with `python -m neosl_scheduler` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

from celery.beat import Scheduler
from prometheus_client.registry import Collector

from neosl import jobs
from neosl.celery_app import ServiceApp, make_worker_app
from neosl.config import Settings, load_settings
from neosl.exporter import Sources
from neosl.metrics import QueueCollector
from neosl.onchain.blocks import subscriptions
from neosl.onchain.metrics import FollowerCollector
from neosl_scheduler import tasks
from neosl_scheduler.metrics import TriggerCollector

QUEUE = jobs.SCHEDULER_QUEUE


def create_worker_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or load_settings()
    # Fail at start, not block by block, if the follower would miss deposits.
    subscriptions(settings)
    app = make_worker_app(settings, QUEUE, resources=tasks.SchedulerResources)
    tasks.register(app, settings)
    app.conf.beat_scheduler = BeatScheduler
    return app


class BeatScheduler(Scheduler):
    """Celery's in-memory beat scheduler (every entry is an interval: nothing to persist),
    but woken when an entry is due, not 10 ms before.

    Celery's wakes up early on purpose (``adjust``'s drift), then finds the entry not due
    yet and asks to be woken in the time left less the same 10 ms, that is at once: it
    spins until the entry is due, some fifty passes for each tick it sends (half a percent
    of a core at the two or three ticks a second of ``tasks.beat_schedule``). Woken on
    time, it makes a pass or two per tick; a tick comes a few milliseconds late, never
    early.
    """

    def adjust(self, n: float, drift: float = 0.0) -> float:
        return n


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the scheduler exports besides its task counts: the chain follower, the
    triggers, its queue."""
    return [
        FollowerCollector(sources.sessions),
        TriggerCollector(sources.sessions),
        QueueCollector(sources.redis, (QUEUE,)),
    ]
