"""Shared start-up of a service process: config errors end it with one clear line."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from neosl.celery_app import make_celery
from neosl.config import ConfigError, Settings, load_settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher


def start_process() -> Settings | None:
    """The settings of a service process, logging set up; None (after one clear line on
    stderr) when the configuration is wrong."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return None
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    return settings


def run_worker(factory: Callable[..., Celery], queue: str, argv: Sequence[str]) -> int:
    settings = start_process()
    if settings is None:
        return 2
    try:
        app = factory(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    app.worker_main(["worker", "-Q", queue, "-n", f"{queue}@%h", *argv])
    return 0


class Loop(Protocol):
    stop: threading.Event

    def run(self) -> None: ...


def run_loop(
    name: str,
    build: Callable[[Settings, sessionmaker[Session], Dispatcher], Loop],
    *,
    pool_size: int,
) -> int:
    """Run a service's own loop process (not a Celery worker) until SIGTERM or SIGINT."""
    settings = start_process()
    if settings is None:
        return 2
    sessions = make_session_factory(make_engine(settings, pool_size=pool_size))
    app = make_celery(settings, name)
    loop = build(settings, sessions, Dispatcher(app))

    def stop(signum: int, frame: object) -> None:
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()
    app.close()
    return 0
