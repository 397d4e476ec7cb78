"""The Celery worker of this service: it runs tenant JavaScript in QuickJS.

Start it with `python -m neosl_executor --pool threads --concurrency 64` (extra arguments go
to `celery worker`). A thread pool: an execution waiting on `fetch` holds a thread, not a
core, and JavaScript itself runs in separate sandbox processes (``neosl.functions.sandbox``); this
process never imports QuickJS.
"""

from __future__ import annotations

from prometheus_client.registry import Collector

from neosl import jobs
from neosl.celery_app import ServiceApp, make_worker_app
from neosl.config import Settings, load_settings
from neosl.exporter import Sources
from neosl.functions.metrics import ExecutionCollector
from neosl.metrics import QueueCollector
from neosl_executor import tasks

QUEUE = jobs.EXECUTOR_QUEUE


def create_worker_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or load_settings()
    # Functions read their secrets: fail at start, not at the first execution.
    settings.require_secrets_keys()
    app = make_worker_app(settings, QUEUE, resources=tasks.ExecutorResources)
    # Up to --concurrency threads run executions, each holding a connection only to claim
    # one and to finish it: 16 pooled connections keep 64 threads from reconnecting or
    # queueing for one (bench/executions.py, "executor only" on 2 cores: 151/s with the
    # default 2, whose overflow connections are closed and reopened, 170/s with 16; 64 did
    # no better).
    app.db_pool_size = 16
    # An execution checks a connection out twice (claim, finish), each in ``ride_out``, which
    # asks again when a dropped connection fails: a ping per checkout would add two round
    # trips to every execution to save one retry after a database restart.
    app.db_pre_ping = False
    tasks.register(app)
    return app


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the executor exports besides its task counts: executions, sandboxes, its queue."""
    return [
        ExecutionCollector(sources.sessions, sources.redis),
        QueueCollector(sources.redis, (QUEUE,)),
    ]
