"""The Celery app every worker service and every producer uses."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP, task_message
from prometheus_client import CollectorRegistry

from neosl import broker, jobs
from neosl.config import Settings
from neosl.metrics import TaskMetrics
from neosl.resources import Resources
from neosl.tasks import ServiceTask

ResourcesFactory = Callable[["ServiceApp"], Resources]

# Housekeeping: the jobs the beat sends every few seconds (and nudges of them, such as the
# follower's on new deposits), each run by a ``PeriodicTask``. No task event reports them,
# neither their sending (``TaskMessages``) nor their runs (``PeriodicTask.send_events``), so
# that Flower's Tasks view shows the work tenants asked for: executions, price rounds,
# relayed actions, withdrawals.
HOUSEKEEPING = frozenset(
    job.name
    for job in (
        jobs.FOLLOW_CHAIN,
        jobs.RECONCILE_WITHDRAWALS,
        jobs.RECONCILE_ACTIONS,
        jobs.APPLY_DEPOSITS,
        jobs.REAP_EXECUTIONS,
        jobs.PURGE_EXECUTIONS,
    )
)


class TaskMessages(AMQP):
    """Celery's task messages, but housekeeping is sent without a ``task-sent`` event.

    The event is made with the message (``task_send_sent_event`` says whether, for every
    task alike); a housekeeping job's is dropped here. Left alone, Flower would list each
    tick as pending for good, since its worker reports nothing more of it.
    """

    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> task_message:
        message = super().as_task_v2(task_id, name, *args, **kwargs)
        if name in HOUSEKEEPING:
            return message._replace(sent_event=None)
        return message


class ServiceApp(Celery):
    """A Celery app of ours: its settings, its tasks' metrics, what its service counts
    itself (``registries``, exported beside the task counts) and its per-process
    resources (``resources``, made on first use in each process)."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        resources: ResourcesFactory = Resources,
        db_pool_size: int = 2,
    ) -> None:
        super().__init__(
            name,
            broker=settings.redis_url,
            backend=settings.result_backend or settings.redis_url,
            amqp=TaskMessages,
        )
        self.settings = settings
        self.task_metrics = TaskMetrics()
        self.registries: list[CollectorRegistry] = []
        # Pooled database connections of a worker process; one running many tasks at once
        # in threads raises it.
        self.db_pool_size = db_pool_size
        # Whether each checkout pings its connection first (see ``neosl.db.make_engine``).
        self.db_pre_ping = True
        self._make_resources = resources
        self._resources: Resources | None = None
        self._resources_lock = threading.Lock()

    @property
    def resources(self) -> Resources:
        """This process's resources (a forked child makes its own)."""
        with self._resources_lock:
            if self._resources is None or self._resources.pid != os.getpid():
                self._resources = self._make_resources(self)
            return self._resources

    @property
    def has_resources(self) -> bool:
        """Whether this process made its resources yet."""
        return self._resources is not None and self._resources.pid == os.getpid()

    def close_resources(self) -> None:
        with self._resources_lock:
            if self._resources is not None and self._resources.pid == os.getpid():
                self._resources.close()
            self._resources = None


def make_celery(
    settings: Settings,
    name: str,
    *,
    queue: str | None = None,
    resources: ResourcesFactory = Resources,
) -> ServiceApp:
    """A Celery app on the Redis broker with our routing and safety settings.

    ``queue`` is the queue a worker consumes by default; producers leave it out.
    """
    app = ServiceApp(settings, name, resources=resources)
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
        # kombu's Redis transport, reusing one client per channel (``neosl.broker``).
        broker_transport=broker.TRANSPORT,
        # Redis redelivers unacknowledged messages after this long; longer than any task.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        # Task events for Flower's Tasks view: workers report each task's progress, producers
        # its sending (without them Flower shows workers but no tasks); none for
        # housekeeping (HOUSEKEEPING).
        worker_send_task_events=settings.celery_events,
        task_send_sent_event=settings.celery_events,
        enable_utc=True,
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


def make_worker_app(
    settings: Settings, queue: str, *, resources: ResourcesFactory = Resources
) -> ServiceApp:
    """The app of the worker service consuming ``queue`` (named ``neosl.<queue>``), with its
    health-check task."""
    app = make_celery(settings, f"neosl.{queue}", queue=queue, resources=resources)
    register_ping(app, queue)
    return app
