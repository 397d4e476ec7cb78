"""What a price costs on chain: a signed report verified by a consumer, next to a pushed update.

Usage: python bench/report_gas.py [--rounds 3] [--block-ms 250]

Starts a one-validator Neo N3 node (blocks every ``--block-ms``; fees do not depend on it),
deploys PriceFeed (publisher and report key from the deploy data) and the example
PriceConsumer bound to one feed, then, each round, sends and waits for:

- update: the publisher pushes a round with ``PriceFeed.update`` (what the service's
  publishing does, one transaction per feed and round);
- verify: anyone brings a signed report to ``PriceFeed.verify`` directly;
- settle: anyone brings a signed report to ``PriceConsumer.settle``, which calls
  ``PriceFeed.verify`` in the same transaction (what a dApp pays to use a report).

Every transaction is signed by one single-signature account; its system fee is what its
test invocation consumed. The table shows, per transaction, the system fee, the network fee
(size and witness check), their sum and the sum over update's. The first round writes each
feed's storage keys for the first time, which costs more; it is shown apart and the rounds
after it must cost the same every time.

Exits 1 when a check fails (a transaction that did not HALT, a price read back that is not
the one sent or signed, a replayed report that is not refused), never because of a figure.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from neo3.contracts.contract import CONTRACT_HASHES
from neo3.core.types import UInt160
from neo3.network.payloads.transaction import Transaction
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account

from neosl.neo.rpc import NeoRpc
from neosl.neo.stack import decode_stack
from neosl.neo.transfers import signed_transaction
from neosl.pricefeeds.reports import Report, ReportKey, new_report_key
from neosl_devstack import contracts, devnet
from neosl_devstack.neo import EmbeddedNeo
from neosl_devstack.servers import free_port

GAS = 10**8
FEED = 7
WAIT = 30.0  # seconds for a transaction to be in a block


class BenchError(RuntimeError):
    """A correctness check failed; the figures cannot be trusted."""


@dataclass(frozen=True)
class Fees:
    system: int
    network: int

    @property
    def total(self) -> int:
        return self.system + self.network


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=3, help="rounds after the first (≥ 1)")
    p.add_argument("--block-ms", type=int, default=250)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.block_ms < 1:
        p.error("--rounds and --block-ms must be positive")
    return args


def script(contract: str, method: str, *args: object) -> bytes:
    return bytes(
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(UInt160.from_string(contract[2:]), method, list(args))
        .to_array()
    )


def send(
    rpc: NeoRpc, account: Account, contract: str, method: str, *args: object
) -> tuple[Fees, Any]:
    """Runs the method in a transaction signed by ``account``; its fees and returned value.

    Raises:
        BenchError: the test invocation or the transaction did not HALT, or no block took it.
    """
    body = script(contract, method, *args)
    signer = [{"account": f"0x{account.script_hash}", "scopes": "CalledByEntry"}]
    test = rpc.invoke_script(body, signer)
    if test["state"] != "HALT":
        raise BenchError(f"{method}: test invocation faulted: {test.get('exception')}")

    def sign(tx: Transaction, magic: int) -> None:
        account.sign_tx(tx, magic)

    tx = signed_transaction(
        rpc,
        account.script_hash,
        sign,
        body,
        system_fee=int(test["gasconsumed"]),
        valid_for_blocks=100,
    )
    tx_hash = rpc.send_raw_transaction(tx.to_array())
    log = rpc.wait_for_application_log(tx_hash, timeout=WAIT)
    if log is None:
        raise BenchError(f"{method}: {tx_hash} not in a block after {WAIT:g} s")
    (execution,) = log["executions"]
    if execution["vmstate"] != "HALT":
        raise BenchError(f"{method}: {tx_hash} faulted: {execution.get('exception')}")
    (value,) = decode_stack(execution["stack"]) or [None]
    return Fees(tx.system_fee, tx.network_fee), value


def read(rpc: NeoRpc, contract: str, method: str, *args: object) -> Any:
    result = rpc.invoke_script(script(contract, method, *args), [])
    if result["state"] != "HALT":
        raise BenchError(f"{method}: faulted: {result.get('exception')}")
    (value,) = decode_stack(result["stack"])
    return value


def deploy(rpc: NeoRpc, neo: EmbeddedNeo, name: str, data: devnet.DeployData) -> str:
    nef, manifest = contracts.artefact(name)
    renamed = {**manifest, "name": f"{manifest['name']}-{secrets.token_hex(4)}"}
    wallet, password = neo.committee_wallet_path, neo.committee_wallet_password
    return devnet.deploy(rpc, wallet, password, nef, renamed, data, timeout=WAIT)


def chain_time(rpc: NeoRpc) -> int:
    """The latest block's time (ms): reports are dated by the chain's clock."""
    return int(rpc.block(rpc.block_count() - 1)["time"])


class Run:
    """The contracts and accounts of one run, and the next round to send."""

    def __init__(self, rpc: NeoRpc, neo: EmbeddedNeo) -> None:
        self.rpc = rpc
        scalar = new_report_key("bench").split(":", 1)[1]
        self.key = ReportKey("bench", base64.urlsafe_b64decode(scalar))
        self.publisher = Account.create_new()
        self.caller = Account.create_new()
        wallet, password = neo.committee_wallet_path, neo.committee_wallet_password
        for account in (self.publisher, self.caller):
            devnet.fund(rpc, wallet, password, str(account.address), 100 * GAS, timeout=WAIT)
        self.pricefeed = deploy(
            rpc, neo, "pricefeed", [self.publisher.script_hash, self.key.public_key]
        )
        self.consumer = deploy(
            rpc, neo, "price_consumer", [UInt160.from_string(self.pricefeed[2:]), FEED]
        )
        self.round = 0

    def update(self) -> Fees:
        self.round += 1
        price = 1_234_000_000 + self.round
        stamp = chain_time(self.rpc)
        key = f"feed:{FEED}"
        fees, _ = send(
            self.rpc, self.publisher, self.pricefeed, "update", key, price, stamp, self.round
        )
        stored = read(self.rpc, self.pricefeed, "get_latest", key)
        if stored != [price, stamp, self.round]:
            raise BenchError(f"update: get_latest is {stored}, not {[price, stamp, self.round]}")
        return fees

    def report(self, feed_id: int) -> tuple[Report, bytes, bytes]:
        self.round += 1
        report = Report.of(
            feed_id,
            "NEO/USD",
            # A cent more each round: the price stays the same number of bytes.
            Decimal("12.34") + Decimal(self.round) / 100,
            self.round,
            chain_time(self.rpc),
            3,
        )
        data = report.to_bytes()
        return report, data, self.key.sign(data)

    def verify(self) -> Fees:
        # Another feed than the consumer's: both keep their own last round.
        report, data, signature = self.report(FEED + 1)
        fees, price = send(
            self.rpc, self.caller, self.pricefeed, "verify", data, signature, FEED + 1
        )
        self._check(report, price, FEED + 1)
        return fees

    def settle(self) -> Fees:
        report, data, signature = self.report(FEED)
        fees, price = send(self.rpc, self.caller, self.consumer, "settle", data, signature)
        self._check(report, price, FEED)
        if read(self.rpc, self.consumer, "last_price") != report.price:
            raise BenchError("settle: the consumer's last price is not the report's")
        replay = self.rpc.invoke_script(
            script(self.consumer, "settle", data, signature),
            [{"account": f"0x{self.caller.script_hash}", "scopes": "CalledByEntry"}],
        )
        if replay["state"] != "FAULT" or "replayed" not in str(replay.get("exception")):
            raise BenchError(f"settle: a replayed report was not refused: {replay}")
        return fees

    def _check(self, report: Report, price: Any, feed_id: int) -> None:
        if price != report.price:
            raise BenchError(f"verify returned {price}, the report says {report.price}")
        verified = read(self.rpc, self.pricefeed, "get_verified", feed_id)
        expected = [report.price, report.timestamp_ms, report.round_id]
        if verified != expected:
            raise BenchError(f"get_verified({feed_id}) is {verified}, not {expected}")


def gas(amount: int) -> str:
    return f"{Decimal(amount) / GAS:.8f}"


def table(title: str, rows: dict[str, Fees]) -> None:
    base = rows["update"].total
    print(f"\n{title}")
    print(f"| {'transaction':<45} | system fee | network fee |   total    | vs update |")
    print(f"|{'-' * 47}|-----------:|------------:|-----------:|----------:|")
    labels = {
        "update": "update (publisher pushes a round)",
        "verify": "verify (anyone, on PriceFeed directly)",
        "settle": "settle (PriceConsumer calls PriceFeed.verify)",
    }
    for name, fees in rows.items():
        print(
            f"| {labels[name]:<45} | {gas(fees.system)} | {gas(fees.network):>11} "
            f"| {gas(fees.total)} | {fees.total / base:>8.2f}x |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"rounds={args.rounds} block-ms={args.block_ms}")
    with tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp:
        neo = EmbeddedNeo(
            Path(tmp) / "neo", free_port(), free_port(), block_ms=args.block_ms, durable=False
        )
        neo.start()
        try:
            with NeoRpc([neo.url]) as rpc:
                return measure(rpc, neo, args.rounds)
        except BenchError as exc:
            print(f"check failed: {exc}", file=sys.stderr)
            return 1
        finally:
            neo.stop()


def policy(rpc: NeoRpc) -> str:
    """The chain's prices that fees follow (the committee may change them on a network)."""
    native = f"0x{CONTRACT_HASHES.POLICY}"
    values = [
        read(rpc, native, method)
        for method in ("getExecFeeFactor", "getStoragePrice", "getFeePerByte")
    ]
    return "exec fee factor {}, storage price {} per byte, fee per byte {}".format(*values)


def measure(rpc: NeoRpc, neo: EmbeddedNeo, rounds: int) -> int:
    began = time.perf_counter()
    print(f"policy: {policy(rpc)}")
    run = Run(rpc, neo)
    first = {"update": run.update(), "verify": run.verify(), "settle": run.settle()}
    later: dict[str, list[Fees]] = {"update": [], "verify": [], "settle": []}
    for _ in range(rounds):
        later["update"].append(run.update())
        later["verify"].append(run.verify())
        later["settle"].append(run.settle())
    table("first round (each feed's storage keys written for the first time), GAS:", first)
    steady = {name: fees[-1] for name, fees in later.items()}
    table(f"each later round ({rounds} rounds), GAS:", steady)
    for name, fees in later.items():
        if len(set(fees)) != 1:
            # Not a failure: a price or time one byte longer costs a little more storage.
            print(f"note: {name} cost varied across rounds: {sorted({f.total for f in fees})}")
    print(f"\n({time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
