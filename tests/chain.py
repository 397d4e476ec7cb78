"""The dev chain as tests use it: fund from the committee, send and wait for the block."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from neosl.neo import devnet
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import build_gas_transfer
from tests.waiting import wait_until

GAS = 10**8


@dataclasses.dataclass
class Chain:
    rpc: NeoRpc
    wallet: Path
    password: str

    def fund(self, address: str, units: int) -> str:
        return devnet.fund(self.rpc, self.wallet, self.password, address, units)

    def send_and_wait(self, wif: str, to: str, units: int) -> tuple[str, int]:
        signed = build_gas_transfer(self.rpc, wif, to, units, valid_for_blocks=100)
        self.rpc.send_raw_transaction(signed.raw)
        wait_until(lambda: self.rpc.application_log(signed.tx_hash), f"{signed.tx_hash} in a block")
        height = self.rpc.transaction_height(signed.tx_hash)
        assert height is not None
        return signed.tx_hash, height
