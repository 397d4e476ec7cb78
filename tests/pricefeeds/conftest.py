"""Fixtures of the price-round tests: local market servers and settings pointing at them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from neosl.config import Settings
from neosl.pricefeeds import catalog
from neosl_devstack.markets import FakeMarkets


@pytest.fixture
def markets() -> Iterator[FakeMarkets]:
    with FakeMarkets() as fake:
        yield fake


@pytest.fixture
def pointed(settings: Settings, markets: FakeMarkets) -> Settings:
    urls = tuple((name, markets.base_url(name)) for name in catalog.NAMES)
    return dataclasses.replace(settings, price_source_urls=urls, price_source_timeout_seconds=1.0)
