"""The Celery worker of this service: it fires cron, webhook, price and chain-event triggers.

Start it with `python -m neosl_scheduler` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

from celery import Celery

from neosl import jobs
from neosl.celery_app import make_worker_app
from neosl.chain import subscriptions
from neosl.config import Settings, load_settings
from neosl_scheduler import tasks

QUEUE = jobs.SCHEDULER_QUEUE


def create_worker_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    # Fail at start, not block by block, if the follower would miss deposits.
    subscriptions(settings)
    app = make_worker_app(settings, "neosl_scheduler", QUEUE)
    tasks.register(app, settings)
    return app
