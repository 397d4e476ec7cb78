"""Fixtures of the contract tests: the embedded node and its committee (the dev chain's faucet
and deployer)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neosl.neo.rpc import NeoRpc
from neosl_devstack.stack import Stack
from tests.contracts.test_consumer import Committee


@pytest.fixture(scope="module")
def committee(stack: Stack) -> Committee:
    if stack.neo is None:
        pytest.skip("NEO_RPC_URL names an outside node: its committee wallet is not ours to spend")
    return Committee(stack.neo.committee_wallet_path, stack.neo.committee_wallet_password)


@pytest.fixture(scope="module")
def rpc(stack: Stack) -> Iterator[NeoRpc]:
    with NeoRpc([stack.started_env["NEO_RPC_URL"]]) as client:
        yield client
