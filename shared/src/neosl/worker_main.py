"""Shared start-up of a worker service: config errors end the process with one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from celery import Celery

from neosl.config import ConfigError, load_settings


def run_worker(factory: Callable[..., Celery], queue: str, argv: Sequence[str]) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        app = factory(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    app.worker_main(["worker", "-Q", queue, "-n", f"{queue}@%h", *argv])
    return 0
