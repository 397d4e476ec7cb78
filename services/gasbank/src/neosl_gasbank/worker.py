"""The Celery worker of this service: it keeps the GAS ledger.

Start it with `python -m neosl_gasbank` (extra arguments go to `celery worker`).
"""

from __future__ import annotations

from prometheus_client.registry import Collector

from neosl import jobs
from neosl.celery_app import ServiceApp, make_worker_app
from neosl.config import Settings, load_settings
from neosl.exporter import Sources
from neosl.gas import bank
from neosl.gas.metrics import BankCollector
from neosl.metrics import QueueCollector
from neosl.onchain import relaybox
from neosl_gasbank import tasks
from neosl_gasbank.hot_wallet import load_hot_wallet
from neosl_gasbank.metrics import HotWalletCollector, RelayMetrics

QUEUE = jobs.GASBANK_QUEUE


def create_worker_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or load_settings()
    # Fail at start, not at the first deposit or withdrawal, if the deposit address or the
    # hot wallet or the relay's key is misconfigured.
    bank.deposit_address(settings)
    relaybox.relay_key(settings)
    load_hot_wallet(settings)
    relayed = RelayMetrics()
    app = make_worker_app(
        settings, QUEUE, resources=lambda app: tasks.GasbankResources(app, relayed)
    )
    app.registries.append(relayed.registry)
    tasks.register(app)
    return app


def collectors(settings: Settings, sources: Sources) -> list[Collector]:
    """What the gasbank exports besides its own counts: the books, the hot wallet's
    balance on chain, its queue."""
    found: list[Collector] = [
        BankCollector(sources.sessions),
        QueueCollector(sources.redis, (QUEUE,)),
    ]
    if settings.deposit_address:
        found.append(HotWalletCollector(settings.neo_rpc_urls, settings.deposit_address))
    return found
