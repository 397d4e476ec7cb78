"""Shared start-up of a service process: config errors end it with one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from celery import Celery

from neosl.config import ConfigError, Settings, load_settings


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
