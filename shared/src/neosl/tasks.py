"""The base classes of every task.

``ServiceTask`` gives a task its settings, a per-process database session factory, a Neo
RPC client and a dispatcher, created on first use inside the worker process (never at
import, never before a fork), and counts and times every run by task name and outcome
(``succeeded``, ``retried``, ``failed``) in the app's ``TaskMetrics``.

``PeriodicTask`` is for what the beat sends every few seconds: it never schedules a retry of
its own. During an outage a retrying periodic task would pile up delayed copies of itself;
the next tick is the retry.

``ChainTask`` is for one-off tasks that talk to the Neo node: an RPC outage is retried with
backoff.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import Any

from celery import Task
from celery.exceptions import Retry
from sqlalchemy.orm import Session, sessionmaker

from neosl import logs
from neosl.config import Settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher
from neosl.logs import REQUEST_ID_HEADER
from neosl.metrics import TaskMetrics
from neosl.neo.rpc import NeoRpc, RpcUnavailable

log = logging.getLogger(__name__)


def task_metrics(app: Any) -> TaskMetrics:
    """The metrics of ``app``'s tasks (one registry per app, made on first use)."""
    metrics: TaskMetrics | None = app.conf.get("neosl_task_metrics")
    if metrics is None:
        metrics = TaskMetrics()
        app.conf.neosl_task_metrics = metrics
    return metrics


class ServiceTask(Task[Any, Any]):
    abstract = True

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.conf.neosl_settings
        return settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        # A task instance lives once per worker process, so this is one engine per process.
        # Its pool should hold a connection for each task that runs at once: one beyond the
        # pool is closed when it is given back, and opening one per task costs more than
        # the task.
        pool_size: int = self.app.conf.neosl_db_pool_size
        return make_session_factory(make_engine(self.settings, pool_size=pool_size))

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.app)

    def rpc(self) -> NeoRpc:
        """A client over every configured endpoint; close it (use ``with``)."""
        return NeoRpc(self.settings.neo_rpc_urls)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        outcome = "failed"
        # The job's arguments that name its work, bound for its logs.
        ids = {key: kwargs.get(key) for key in logs.WORK_IDS}
        request = self.request
        try:
            with logs.context(
                request_id=getattr(request, REQUEST_ID_HEADER, None),
                task_id=request.id,
                **ids,
            ):
                result = super().__call__(*args, **kwargs)
        except Retry:
            outcome = "retried"
            raise
        else:
            outcome = "succeeded"
            return result
        finally:
            task_metrics(self.app).observe(self.name, outcome, time.perf_counter() - start)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        log.error("task %s[%s] failed: %s", self.name, task_id, exc)


class PeriodicTask(ServiceTask):
    """A task the beat sends on an interval: it fails without retrying (see module doc)."""

    abstract = True
    autoretry_for = ()
    max_retries = 0


class ChainTask(ServiceTask):
    """A one-off task that talks to the Neo node: an RPC outage is retried with backoff.

    Whatever outlasts the retries is picked up by the periodic tasks; these tasks are
    written to be safe to run again.
    """

    abstract = True
    autoretry_for = (RpcUnavailable,)
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 10
