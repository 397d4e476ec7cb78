"""The executor's Celery tasks: thin wrappers around the runner and the reaper."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_shutdown
from redis import Redis

from neosl import jobs
from neosl.functions.executions import announce_done
from neosl.functions.netguard import Fetcher
from neosl.functions.sandbox import SandboxPool
from neosl.neo.rpc import NeoRpc
from neosl.tasks import PeriodicTask, ServiceTask
from neosl_executor import reaper, runner
from neosl_executor.neo_calls import NeoReader

_lock = threading.Lock()


def sandbox_pool(app: Celery) -> SandboxPool:
    """This worker process's pool of sandbox processes, started on first use."""
    with _lock:
        pool: SandboxPool | None = app.conf.get("neosl_sandbox_pool")
        if pool is None:
            settings = app.conf.neosl_settings
            # Read-only: neo.call test-invokes; the executor holds no key.
            rpc = NeoRpc(settings.neo_rpc_urls)
            app.conf.neosl_neo_rpc = rpc
            pool = SandboxPool(
                max_processes=settings.sandbox_processes,
                fetcher=Fetcher.from_settings(settings),
                neo_caller=NeoReader(rpc),
            )
            app.conf.neosl_sandbox_pool = pool
        return pool


def _redis(app: Celery) -> Redis:
    with _lock:
        client: Redis | None = app.conf.get("neosl_redis")
        if client is None:
            client = Redis.from_url(app.conf.neosl_settings.redis_url, socket_timeout=5)
            app.conf.neosl_redis = client
        return client


def pool_stats_key(worker: str) -> str:
    return f"nsl:executor:pool:{worker}"


def register(app: Celery) -> None:
    # ignore_result: the outcome is in the database and announced to waiters; storing the
    # status in the result backend too would cost every execution a write nobody reads.
    @app.task(
        name=jobs.RUN_EXECUTION.name,
        base=ServiceTask,
        bind=True,
        shared=False,
        ignore_result=True,
    )
    def run_execution(self: ServiceTask, execution_id: int) -> str:
        status = runner.run_execution(
            self.sessions,
            self.settings,
            sandbox_pool(self.app).run,
            execution_id,
            self.dispatcher,
        )
        if status != "skipped":
            announce_done(_redis(self.app), execution_id)
        return status

    @app.task(name=jobs.REAP_EXECUTIONS.name, base=PeriodicTask, bind=True, shared=False)
    def reap_executions(self: PeriodicTask) -> dict[str, int]:
        counts = reaper.reap(self.sessions, self.settings, self.dispatcher)
        pool: SandboxPool | None = self.app.conf.get("neosl_sandbox_pool")
        if pool is not None:
            # For the API's /metrics: this process's pool, kept a minute.
            key = pool_stats_key(runner.WORKER_NAME)
            client = _redis(self.app)
            client.hset(key, mapping={"size": pool.size, "restarts": pool.restarts})
            client.expire(key, 60)
        return dict(counts)

    @app.task(name=jobs.PURGE_EXECUTIONS.name, base=PeriodicTask, bind=True, shared=False)
    def purge_executions(self: PeriodicTask) -> int:
        return reaper.purge(self.sessions, self.settings)

    @worker_init.connect(weak=False)
    def prestart_sandboxes(sender: Any = None, **_kwargs: Any) -> None:
        # Sandbox processes take about 0.1 s of CPU each to start: started on demand, a burst
        # of executions waiting on fetch would wait for dozens of them. Start them now, in
        # the background, each taking work as soon as it is ready.
        if sender is None or getattr(sender, "app", None) is not app:
            return
        count = app.conf.neosl_settings.sandbox_warm
        if count <= 0:
            return
        pool = sandbox_pool(app)
        for i in range(pool.max_starting):
            threading.Thread(
                target=pool.prestart, args=(count,), name=f"sandbox-prestart-{i}", daemon=True
            ).start()

    @worker_shutdown.connect(weak=False)
    def stop_sandboxes(sender: Any = None, **_kwargs: Any) -> None:
        pool: SandboxPool | None = app.conf.get("neosl_sandbox_pool")
        if pool is not None:
            pool.close()
        rpc: NeoRpc | None = app.conf.get("neosl_neo_rpc")
        if rpc is not None:
            rpc.close()
