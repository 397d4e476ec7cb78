"""The Redis broker transport our Celery apps use: kombu's, with one Redis client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client for every operation it does
outside its polling loop (``conn_or_acquire``): acknowledging a message, recording one as
unacknowledged, publishing a task event. The client is a thin object over the channel's
connection pool, but building one (its response callbacks) cost an executor about 6 % of
its CPU, three times per execution (bench/executions.py, profiled). Here a channel keeps one
client over its current pool and hands it out instead: the same pool, so the same
connections, and a ``redis.Redis`` is safe to share between threads. A pool replaced (after a
fork, or a reconnection) gets a client of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

# What ``make_celery`` names as the broker transport (kombu resolves "module:Class").
TRANSPORT = "neosl.broker:Transport"


class Channel(kombu_redis.Channel):
    _neosl_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        cached = self._neosl_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._neosl_client = self._create_client()  # type: ignore[attr-defined]
        yield cached


class Transport(kombu_redis.Transport):
    Channel = Channel
