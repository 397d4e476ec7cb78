"""The base class of every task: settings, a per-process database session factory, a Neo
RPC client and a dispatcher, created on first use inside the worker process (never at import,
never before a fork).
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from celery import Task
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher
from neosl.neo.rpc import NeoRpc, RpcUnavailable

log = logging.getLogger(__name__)


class ServiceTask(Task[Any, Any]):
    abstract = True

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.conf.neosl_settings
        return settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        # A task instance lives once per worker process, so this is one engine per process.
        return make_session_factory(make_engine(self.settings, pool_size=2))

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.app)

    def rpc(self) -> NeoRpc:
        """A client over every configured endpoint; close it (use ``with``)."""
        return NeoRpc(self.settings.neo_rpc_urls)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        log.error("task %s[%s] failed: %s", self.name, task_id, exc)


class ChainTask(ServiceTask):
    """A task that talks to the Neo node: an RPC outage is retried with backoff.

    Whatever outlasts the retries is picked up by the next periodic run; these tasks are
    written to be safe to run again.
    """

    abstract = True
    autoretry_for = (RpcUnavailable,)
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 10
