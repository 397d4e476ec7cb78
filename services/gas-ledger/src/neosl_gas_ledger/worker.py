"""The Celery worker of this service: it keeps the GAS ledger.

Start it with `python -m neosl_ledger` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

from celery import Celery

from neosl import jobs
from neosl.celery_app import make_worker_app
from neosl.config import Settings, load_settings
from neosl_ledger import tasks
from neosl_ledger.hot_wallet import load_hot_wallet

QUEUE = jobs.LEDGER_QUEUE


def create_worker_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    # Fail at start, not at the first withdrawal, if the hot wallet is misconfigured.
    load_hot_wallet(settings)
    app = make_worker_app(settings, "neosl_ledger", QUEUE)
    tasks.register(app)
    return app
