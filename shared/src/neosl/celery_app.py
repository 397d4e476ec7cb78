"""The Celery app factory every worker service and every producer uses."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery

from neosl import jobs
from neosl.config import Settings
from neosl.metrics import TaskMetrics
from neosl.tasks import ServiceTask


def make_celery(settings: Settings, name: str, *, queue: str | None = None) -> Celery:
    """A Celery app on the Redis broker with our routing and safety settings.

    ``queue`` is the queue a worker consumes by default; producers leave it out.
    """
    app = Celery(
        name, broker=settings.redis_url, backend=settings.result_backend or settings.redis_url
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=3600,
        # Acknowledge after the task ran, and hand tasks of a dying worker back to the queue:
        # a crash must not lose work (tasks are written to be safe to run again).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes={job.name: {"queue": job.queue} for job in jobs.ALL_JOBS},
        broker_connection_retry_on_startup=True,
        # Redis redelivers unacknowledged messages after this long; longer than any task.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        # Task events for Flower's Tasks view: workers report each task's progress, producers
        # its sending (without them Flower shows workers but no tasks).
        worker_send_task_events=settings.celery_events,
        task_send_sent_event=settings.celery_events,
        enable_utc=True,
        # Read by neosl.tasks.ServiceTask in the worker process.
        neosl_settings=settings,
        neosl_task_metrics=TaskMetrics(),
        # Pooled database connections of a worker process; one running many tasks at once
        # in threads raises it.
        neosl_db_pool_size=2,
    )
    if queue is not None:
        app.conf.task_default_queue = queue
    return app


def register_ping(app: Celery, queue: str) -> None:
    """Register the health-check task of the worker that consumes ``queue``."""

    # shared=False: without it Celery adds the task to every app in the process. A
    # ServiceTask, so that pings are counted with the other tasks.
    @app.task(name=jobs.PING_JOBS[queue].name, base=ServiceTask, shared=False)
    def ping() -> dict[str, Any]:
        return {"queue": queue, "host": socket.gethostname(), "pid": os.getpid()}


def make_worker_app(settings: Settings, name: str, queue: str) -> Celery:
    """The app of the worker service consuming ``queue``, with its health-check task."""
    app = make_celery(settings, name, queue=queue)
    register_ping(app, queue)
    return app
