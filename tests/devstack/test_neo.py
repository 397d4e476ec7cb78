"""The embedded Neo N3 node: it produces blocks, neo-mamba can use it, and it survives restarts."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import yaml
from neo3.api.noderpc import NeoRpcClient
from neo3.api.wrappers import ChainFacade, GasToken
from neo3.wallet.wallet import Wallet

from neosl_devstack.neo import NETWORK_MAGIC, EmbeddedNeo
from neosl_devstack.servers import free_port

pytestmark = pytest.mark.neo


async def _block_count(url: str) -> int:
    async with NeoRpcClient(url) as client:
        return int(await client.get_block_count())


def _wait_for_block_count(url: str, at_least: int, timeout: float = 30) -> int:
    """Poll until the node has made ``at_least`` blocks; return the count then."""
    deadline = time.monotonic() + timeout
    while (count := asyncio.run(_block_count(url))) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the node made {count} blocks, not {at_least}, within {timeout:.0f} s"
            )
        time.sleep(0.05)
    return count


async def _network_magic(url: str) -> int:
    async with NeoRpcClient(url) as client:
        version = await client.get_version()
        return int(version.protocol.network)


async def _committee_gas(node: EmbeddedNeo) -> int:
    pw = node.committee_wallet_password
    wallet = Wallet.from_file(str(node.committee_wallet_path), passwords=[pw, pw])
    committee = wallet.import_multisig_address(1, [wallet.account_default.public_key])
    facade = ChainFacade(rpc_host=node.url)
    receipt = await facade.test_invoke(GasToken().balance_of(committee.script_hash))
    return int(receipt.result)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_in_memory_node_makes_blocks_and_funds_the_committee(tmp_path: Path) -> None:
    node = EmbeddedNeo(tmp_path, free_port(), free_port(), block_ms=200, durable=False)
    node.start(timeout=20)
    try:
        assert node.process is not None
        pid = node.process.pid
        before = asyncio.run(_block_count(node.url))
        # Several blocks, not just one, show the 200 ms block time keeps producing.
        _wait_for_block_count(node.url, before + 3)
        assert asyncio.run(_network_magic(node.url)) == NETWORK_MAGIC == node.network_magic
        assert asyncio.run(_committee_gas(node)) > 0
        assert not (tmp_path / "chain").exists()
    finally:
        node.stop()
    assert node.process is None
    assert _process_gone(pid)


def test_durable_node_keeps_its_chain_and_key_across_restarts(tmp_path: Path) -> None:
    node = EmbeddedNeo(tmp_path, free_port(), free_port(), block_ms=200)
    with node:
        # Blocks past genesis, so that keeping the chain is more than keeping genesis.
        height_before = _wait_for_block_count(node.url, 3)
    wallet_before = node.committee_wallet_path.read_text()

    # New ports on purpose: only the chain and the key must carry over.
    node = EmbeddedNeo(tmp_path, free_port(), free_port(), block_ms=200)
    with node:
        assert asyncio.run(_block_count(node.url)) >= height_before
    assert node.committee_wallet_path.read_text() == wallet_before


def _committee_keys(node: EmbeddedNeo) -> list[str]:
    config = yaml.safe_load(node.config_path.read_text())
    return list(config["ProtocolConfiguration"]["StandbyCommittee"])


def test_each_data_folder_gets_its_own_key(tmp_path: Path) -> None:
    first = EmbeddedNeo(tmp_path / "a", free_port(), free_port())
    second = EmbeddedNeo(tmp_path / "b", free_port(), free_port())
    first.prepare()
    second.prepare()
    assert first.committee_wallet_password != second.committee_wallet_password
    assert _committee_keys(first) != _committee_keys(second)
    # The key is made once per data folder, not once per run.
    keys = _committee_keys(first)
    first.prepare()
    assert _committee_keys(first) == keys
