"""The pricefeed worker's Celery tasks: thin wrappers around ``pricing``, and the
resources its process holds for them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import cast

import httpx
from celery import Celery

from neosl import jobs
from neosl.celery_app import ServiceApp
from neosl.functions.netguard import Fetcher
from neosl.resources import Resources
from neosl.tasks import ServiceTask
from neosl_pricefeed import listings, pricing
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources.base import new_client

# Threads asking sources, shared by the rounds of a process. A thread is started only when
# every one is busy, so the cap costs nothing until it is reached; it covers 32 rounds at
# once of 8 sources each: beyond it, a round's asks would wait for threads instead of being
# asked at once within the per-source timeout.
SOURCE_THREADS = 256


class PricefeedResources(Resources):
    """A pricefeed worker process's HTTP client for the named sources, the guarded fetcher
    for the generic ones, the threads that ask them, and the counts of its rounds (made once
    per app by ``create_worker_app``, exported by the worker)."""

    def __init__(self, app: ServiceApp, metrics: RoundMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics
        self._lock = threading.Lock()

    @cached_property
    def client(self) -> httpx.Client:
        return new_client()

    @cached_property
    def fetcher(self) -> Fetcher:
        return pricing.generic_fetcher(self.settings)

    @cached_property
    def pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(SOURCE_THREADS, thread_name_prefix="source")

    @property
    def askers(self) -> pricing.Askers:
        # The first rounds of a thread pool worker arrive together: each member is made
        # once, not once per thread that raced for it.
        with self._lock:
            return pricing.Askers(self.client, self.fetcher, self.pool)

    def close(self) -> None:
        if "pool" in self.__dict__:
            self.pool.shutdown(wait=True)
        if "client" in self.__dict__:
            self.client.close()
        if "fetcher" in self.__dict__:
            self.fetcher.close()
        super().close()


class PricefeedTask(ServiceTask):
    abstract = True

    @property
    def resources(self) -> PricefeedResources:
        return cast(PricefeedResources, self.service.resources)


def register(app: Celery) -> None:
    # ignore_result: the outcome is in the database; nobody waits for it.
    @app.task(
        name=jobs.RUN_ROUND.name, base=PricefeedTask, bind=True, shared=False, ignore_result=True
    )
    def run_round(self: PricefeedTask, round_id: int) -> str:
        resources = self.resources
        return pricing.run_round(
            resources.sessions,
            self.settings,
            resources.dispatcher,
            resources.askers,
            resources.metrics,
            round_id,
        )

    @app.task(
        name=jobs.REFRESH_LISTING.name,
        base=PricefeedTask,
        bind=True,
        shared=False,
        ignore_result=True,
    )
    def refresh_listing(self: PricefeedTask, source: str) -> str:
        resources = self.resources
        with resources.sessions() as session:
            return listings.refresh(session, self.settings, resources.client, source)
