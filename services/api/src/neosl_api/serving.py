"""Gunicorn's hooks for the API's process tree: ``gunicorn -c python:neosl_api.serving …``.

The API's metrics are not served on the public port, where every tenant could read every
tenant's figures. The gunicorn master serves ``/metrics`` and ``/healthz`` on
``NSL_METRICS_HOST:NSL_METRICS_PORT``, as every worker service does: its workers' request
counts added up from ``PROMETHEUS_MULTIPROC_DIR`` (set it for the API: without it the master
sees none of them) and the scrape-time summary (``neosl_api.metrics.collectors``, each
costly figure read at most every few seconds).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from prometheus_client import multiprocess

from neosl import exporter
from neosl.config import ConfigError, load_settings
from neosl.metrics import MULTIPROC_DIR, prepare_multiprocess_dir
from neosl_api.metrics import collectors

log = logging.getLogger(__name__)


def on_starting(server: Any) -> None:
    # Before any worker starts writing its counts there.
    prepare_multiprocess_dir()


def when_ready(server: Any) -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        # The workers refuse to start with the same message; nothing to serve.
        log.error("configuration error: %s", exc)
        return
    if settings.metrics_port and not os.environ.get(MULTIPROC_DIR):
        log.warning("%s is not set: the API's request counts are not exported", MULTIPROC_DIR)
    server.neosl_exporter = exporter.start(settings, [], collectors)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    served = getattr(server, "neosl_exporter", None)
    if served is not None:
        served.close()
