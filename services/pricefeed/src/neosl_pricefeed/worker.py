"""The Celery worker of this service: it aggregates and publishes price feeds.

Start it with `python -m neosl_pricefeed` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

from celery import Celery
from prometheus_client.registry import Collector

from neosl import jobs
from neosl.celery_app import make_worker_app
from neosl.config import Settings, load_settings
from neosl.exporter import Sources
from neosl.metrics import QueueCollector

QUEUE = jobs.PRICEFEED_QUEUE


def create_worker_app(settings: Settings | None = None) -> Celery:
    # Tasks of this service are registered on the app here.
    return make_worker_app(settings or load_settings(), "neosl_pricefeed", QUEUE)


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """Its queue (the feeds' figures are the rounds process's)."""
    return [QueueCollector(sources.redis, (QUEUE,))]
