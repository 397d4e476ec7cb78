"""The executor's Celery tasks: thin wrappers around the runner and the reaper."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any, cast

from celery import Celery
from celery.signals import worker_init, worker_shutdown
from redis import Redis

from neosl import jobs
from neosl.celery_app import ServiceApp
from neosl.functions.netguard import Fetcher
from neosl.functions.sandbox import SandboxPool
from neosl.neo.rpc import NeoRpc
from neosl.resources import Resources
from neosl.tasks import PeriodicTask, ServiceTask
from neosl_executor import reaper, runner, sizing
from neosl_executor.neo_calls import NeoReader


class ExecutorResources(Resources):
    """An executor process's sandbox pool (started on first use), the read-only RPC client
    its functions' ``neo.call`` uses (the executor holds no key) and its Redis client."""

    def __init__(self, app: ServiceApp) -> None:
        super().__init__(app)
        self._lock = threading.Lock()
        self._pool: SandboxPool | None = None

    @cached_property
    def rpc(self) -> NeoRpc:
        return NeoRpc(self.settings.neo_rpc_urls)

    @property
    def pool(self) -> SandboxPool:
        # Many threads of one process ask for it at once: it is made once.
        with self._lock:
            if self._pool is None:
                self._pool = SandboxPool(
                    max_processes=self.settings.sandbox_processes,
                    fetcher=Fetcher.from_settings(self.settings),
                    neo_caller=NeoReader(self.rpc),
                    user=self.settings.sandbox_user,
                )
            return self._pool

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url, socket_timeout=5)

    @property
    def has_pool(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        if self.has_pool:
            self.pool.close()
        if "rpc" in self.__dict__:
            self.rpc.close()
        if "redis" in self.__dict__:
            self.redis.close()
        super().close()


class ExecutorTask(ServiceTask):
    abstract = True

    @property
    def resources(self) -> ExecutorResources:
        return cast(ExecutorResources, self.service.resources)


class PeriodicExecutorTask(PeriodicTask, ExecutorTask):
    abstract = True


def pool_stats_key(worker: str) -> str:
    return f"nsl:executor:pool:{worker}"


def register(app: Celery) -> None:
    # ignore_result: the outcome is in the database and announced to waiters; storing the
    # status in the result backend too would cost every execution a write nobody reads.
    @app.task(
        name=jobs.RUN_EXECUTION.name,
        base=ExecutorTask,
        bind=True,
        shared=False,
        ignore_result=True,
    )
    def run_execution(self: ExecutorTask, execution_id: int) -> str:
        # The finish announces the execution to whoever waits, with the jobs it releases.
        resources = self.resources
        return runner.run_execution(
            resources.sessions,
            self.settings,
            resources.pool.run,
            execution_id,
            resources.dispatcher,
            worker_name=resources.worker_name,
        )

    @app.task(name=jobs.REAP_EXECUTIONS.name, base=PeriodicExecutorTask, bind=True, shared=False)
    def reap_executions(self: PeriodicExecutorTask) -> dict[str, int]:
        resources = self.resources
        counts = reaper.reap(resources.sessions, self.settings, resources.dispatcher)
        if resources.has_pool:
            # For the API's /metrics: this process's pool, kept a minute.
            key = pool_stats_key(resources.worker_name)
            pool = resources.pool
            resources.redis.hset(key, mapping={"size": pool.size, "restarts": pool.restarts})
            resources.redis.expire(key, 60)
        return dict(counts)

    @app.task(name=jobs.PURGE_EXECUTIONS.name, base=PeriodicExecutorTask, bind=True, shared=False)
    def purge_executions(self: PeriodicExecutorTask) -> int:
        return reaper.purge(self.sessions, self.settings)

    @worker_init.connect(weak=False)
    def prestart_sandboxes(sender: Any = None, **_kwargs: Any) -> None:
        # Sandbox processes take about 0.1 s of CPU each to start: started on demand, a burst
        # of executions waiting on fetch would wait for dozens of them. Start them now, in
        # the background, each taking work as soon as it is ready.
        if sender is None or getattr(sender, "app", None) is not app:
            return
        service = cast(ServiceApp, app)
        sizing.check_memory_limit(
            int(getattr(sender, "concurrency", 0) or 1), service.settings.sandbox_processes
        )
        count = service.settings.sandbox_warm
        if count <= 0:
            return
        pool = cast(ExecutorResources, service.resources).pool
        for i in range(pool.max_starting):
            threading.Thread(
                target=pool.prestart, args=(count,), name=f"sandbox-prestart-{i}", daemon=True
            ).start()

    @worker_shutdown.connect(weak=False)
    def stop_sandboxes(sender: Any = None, **_kwargs: Any) -> None:
        cast(ServiceApp, app).close_resources()
