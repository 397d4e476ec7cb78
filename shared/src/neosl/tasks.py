"""The base classes of every task.

``ServiceTask`` gives a task its settings and its process's resources (``neosl.resources``:
a database session factory, a dispatcher, and what the service adds), made on first use
inside the worker process (never at import, never before a fork), and counts and times
every run by task name and outcome (``succeeded``, ``retried``, ``failed``) in the app's
``TaskMetrics``.

``PeriodicTask`` is for what the beat sends every few seconds: it never schedules a retry of
its own. During an outage a retrying periodic task would pile up delayed copies of itself;
the next tick is the retry. Nor does it report its runs as task events: housekeeping ticking
every second would bury the tenants' work in Flower's Tasks view and cost every worker and
Flower a few messages a second. Its runs are counted like any task's (``TaskMetrics``) and
its failures logged; its sending goes without an event too (``neosl.celery_app``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from celery import Task
from celery.exceptions import Retry
from sqlalchemy.orm import Session, sessionmaker

from neosl import logs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.logs import REQUEST_ID_HEADER
from neosl.metrics import TaskMetrics
from neosl.resources import Resources

if TYPE_CHECKING:
    from neosl.celery_app import ServiceApp

log = logging.getLogger(__name__)


def task_metrics(app: Any) -> TaskMetrics:
    """The metrics of ``app``'s tasks: a ServiceApp's own, else one made for it on first use."""
    metrics: TaskMetrics | None = getattr(app, "task_metrics", None)
    if metrics is None:
        metrics = TaskMetrics()
        app.task_metrics = metrics
    return metrics


class ServiceTask(Task[Any, Any]):
    abstract = True

    @property
    def service(self) -> ServiceApp:
        return cast("ServiceApp", self.app)

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def resources(self) -> Resources:
        """This process's resources; a service's task base narrows the type."""
        return self.service.resources

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.resources.sessions

    @property
    def dispatcher(self) -> Dispatcher:
        return self.resources.dispatcher

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
    """A task the beat sends on an interval: it fails without retrying and sends no task
    events (see module doc); its name is in ``neosl.celery_app.HOUSEKEEPING``."""

    abstract = True
    autoretry_for = ()
    max_retries = 0
    # Celery's per-task switch: the worker reports nothing of this task's runs (received,
    # started, succeeded, failed, retried, revoked), even with task events on.
    send_events = False
