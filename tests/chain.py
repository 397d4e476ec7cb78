"""The dev chain as tests use it: fund from the committee, send and wait for the block."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import build_gas_transfer
from neosl_devstack import contracts, devnet
from tests.waiting import wait_until

GAS = 10**8


@dataclasses.dataclass
class Chain:
    rpc: NeoRpc
    wallet: Path
    password: str

    def fund(self, address: str, units: int) -> str:
        return devnet.fund(self.rpc, self.wallet, self.password, address, units)

    def deploy_consumer(self, owner: str) -> str:
        """A fresh Consumer contract (a unique name) whose writer is ``owner``; its hash."""
        nef, manifest = contracts.artefact("consumer")
        renamed = {**manifest, "name": f"Consumer-{secrets.token_hex(4)}"}
        return devnet.deploy(
            self.rpc, self.wallet, self.password, nef, renamed, address_to_script_hash(owner)
        )

    def send_and_wait(self, wif: str, to: str, units: int) -> tuple[str, int]:
        signed = build_gas_transfer(self.rpc, wif, to, units, valid_for_blocks=100)
        self.rpc.send_raw_transaction(signed.raw)
        wait_until(lambda: self.rpc.application_log(signed.tx_hash), f"{signed.tx_hash} in a block")
        height = self.rpc.transaction_height(signed.tx_hash)
        assert height is not None
        return signed.tx_hash, height
