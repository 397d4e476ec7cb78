"""The Celery worker of this service: it runs price rounds from the ``pricefeed`` queue.

Start it with `python -m neosl_pricefeed --pool threads --concurrency 32` (extra arguments
go to `celery worker`). A thread pool: a round spends its time waiting on its sources, so a
thread, not a core, waits for a slow one while the other rounds go on. The clock
(``neosl_pricefeed.clock``) queues the rounds; this worker runs them (``pricing``).
"""

from __future__ import annotations

from prometheus_client.registry import Collector

from neosl import jobs
from neosl.celery_app import ServiceApp, make_worker_app
from neosl.config import Settings, load_settings
from neosl.exporter import Sources
from neosl.metrics import QueueCollector
from neosl.pricefeeds.metrics import PriceFeedCollector
from neosl_pricefeed import tasks
from neosl_pricefeed.metrics import RoundMetrics

QUEUE = jobs.PRICEFEED_QUEUE


def create_worker_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or load_settings()
    # Generic sources may send tenants' secrets: fail at start, not in a round.
    settings.require_secrets_keys()
    metrics = RoundMetrics()
    app = make_worker_app(
        settings, QUEUE, resources=lambda app: tasks.PricefeedResources(app, metrics)
    )
    app.registries.append(metrics.registry)
    # A round holds a connection only to claim itself, to read its tenant's secrets and to
    # store its outcome, never while it waits on its sources: 8 pooled connections serve
    # the threads running rounds at once without reconnecting for most of them.
    app.db_pool_size = 8
    tasks.register(app)
    return app


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the pricefeed worker exports besides its own counts: the feeds' state (how many,
    gone stale, publications in flight) and its queue."""
    return [PriceFeedCollector(sources.sessions), QueueCollector(sources.redis, (QUEUE,))]
