"""What one worker process holds for its tasks: made on first use, in that process.

A worker service's app names its ``Resources`` class (a subclass adds what the service
needs: a sandbox pool, RPC clients, HTTP clients). The app makes one per process on first
use, so nothing is made at import or before Celery forks its pool, and a forked child
makes its own instead of sharing its parent's sockets.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher

if TYPE_CHECKING:
    from neosl.celery_app import ServiceApp


class Resources:
    def __init__(self, app: ServiceApp) -> None:
        self.app = app
        self.settings: Settings = app.settings
        self.pid = os.getpid()

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        # One engine per process. Its pool should hold a connection for each task that runs
        # at once: one beyond the pool is closed when it is given back, and opening one per
        # task costs more than the task.
        engine = make_engine(
            self.settings, pool_size=self.app.db_pool_size, pre_ping=self.app.db_pre_ping
        )
        return make_session_factory(engine)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.app)

    @cached_property
    def http(self) -> httpx.Client:
        """This process's HTTP connections, for clients that pass it on (e.g. a Neo RPC
        client per pass): building a client costs ~25 ms of CPU (its TLS set-up, even for
        plain HTTP); a loop that built one a second spent 3 % of a core."""
        return httpx.Client()

    @cached_property
    def worker_name(self) -> str:
        """This process, as recorded on the rows it claims: host and pid."""
        return f"{socket.gethostname()}:{self.pid}"

    def close(self) -> None:
        """Release what this process holds; a subclass closes its own and calls this."""
        if "http" in self.__dict__:
            self.http.close()
        engine = self.__dict__.get("sessions")
        if engine is not None:
            bind = engine.kw.get("bind")
            if bind is not None:
                bind.dispose()
