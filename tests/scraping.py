"""Reading what a process serves on /metrics, for tests."""

from __future__ import annotations

import urllib.request

from flask import Flask
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from neosl.exporter import Sources
from neosl.metrics import exported
from neosl_api.metrics import collectors

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(port: int) -> Samples:
    """The samples of http://127.0.0.1:``port``/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return samples(resp.read().decode())


def api_figures(app: Flask) -> str:
    """What the API's metrics port serves for ``app``: its request counts and the system's
    figures read through its own sessions and Redis client (those of the test's
    transaction), in Prometheus' text format."""
    state = app.extensions["neosl"]
    sources = Sources(state.settings, sessions=state.session_factory, redis=state.redis)
    registry = exported([state.metrics], collectors(state.settings, sources))
    return generate_latest(registry).decode()
