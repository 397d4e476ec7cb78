"""The HTTP endpoint of a worker or loop process: ``/metrics`` for Prometheus and
``/healthz`` for liveness probes, on ``NSL_METRICS_HOST``:``NSL_METRICS_PORT`` (off while the
port is 0).

It runs in a daemon thread of the process's main process (never in a forked child). Its
scrape-time collectors get their own sources from ``Sources``: a database engine without a
pool (a connection per scrape, none held between scrapes or inherited by a fork) and a
Redis client, both made on the first scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.registry import Collector
from redis import Redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from neosl.config import Settings
from neosl.db import make_session_factory
from neosl.metrics import exported

log = logging.getLogger(__name__)


class Sources:
    """Where scrape-time collectors read from, made on first use (or given: a test passes
    its own sessions and client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session] | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.settings = settings
        if sessions is not None:
            self.__dict__["sessions"] = sessions
        if redis is not None:
            self.__dict__["redis"] = redis

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        engine = create_engine(self.settings.database_url, poolclass=NullPool)
        return make_session_factory(engine)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)


# What a service exports besides its own counts, given its settings and sources.
CollectorsFactory = Callable[[Settings, Sources], Iterable[Collector]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _app(registry: CollectorRegistry) -> Callable[..., Any]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found\n"]

    return app


class Exporter:
    """A running endpoint; ``port`` is the one bound (useful with port 0 in tests)."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(host: str, port: int, registry: CollectorRegistry) -> Exporter:
    """Serve ``registry`` on ``host``:``port`` in a daemon thread."""
    server = make_server(host, port, _app(registry), _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return Exporter(server, thread)


def start(
    settings: Settings,
    own: list[CollectorRegistry],
    collectors: CollectorsFactory | None = None,
) -> Exporter | None:
    """Start the process's endpoint if ``NSL_METRICS_PORT`` is set; None otherwise."""
    if not settings.metrics_port:
        return None
    found = list(collectors(settings, Sources(settings))) if collectors else []
    exporter = serve(settings.metrics_host, settings.metrics_port, exported(own, found))
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, exporter.port)
    return exporter
