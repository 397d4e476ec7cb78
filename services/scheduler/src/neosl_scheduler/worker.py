"""The Celery worker of this service: it fires cron, webhook, price and chain-event triggers.

Start it with `python -m neosl_scheduler` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

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
    return app


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the scheduler exports besides its task counts: the chain follower, the
    triggers, its queue."""
    return [
        FollowerCollector(sources.sessions),
        TriggerCollector(sources.sessions),
        QueueCollector(sources.redis, (QUEUE,)),
    ]
