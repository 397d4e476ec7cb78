"""`neosl-dev up` (what `make dev` runs): the whole system from embedded servers.

Serves /readyz, the walk-through works, Flower answers, every worker answers its ping,
the Neo block count rises, `neosl devnet fund` works from any folder with the environment
`neosl-dev env` prints, Ctrl-C leaves nothing running, and data survives a restart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from sqlalchemy import make_url

from neosl.neo.rpc import NeoRpc
from neosl_devstack.postgres import BIN_DIR, EmbeddedPostgres
from neosl_devstack.servers import free_port, port_is_open
from tests.scraping import scrape
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
# The dev stack's keys (in .dev/secrets.env): never in its logs.
SECRET_VARIABLES = ("NSL_SECRET_KEY=", "NSL_SECRETS_KEY=", "NSL_HOT_WALLET_WIF=", "NSL_RELAY_KEY=")

# Left unset for the stack to fill in: `neosl-dev up` starts the servers, `neosl-dev env`
# exports their URLs and the devnet wallet.
STACK_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "NEO_RPC_URL",
    "NEO_RPC_URLS",
    "NSL_DEVNET_WALLET",
    "NSL_DEVNET_WALLET_PASSWORD",
}


def http(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


# Each worker process's line in the Procfile (the API is line 0).
METRICS_LINES = {
    "api": 0,
    "executor": 1,
    "scheduler": 2,
    "scheduler-clock": 3,
    "pricefeed": 4,
    "pricefeed-clock": 5,
    "gasbank": 6,
}
# The functions walk-through's invoke carries this id; the executor's lines must too.
REQUEST_ID = "e2e-walkthrough-invoke"


def free_block(size: int) -> int:
    """The first of ``size`` consecutive free ports."""
    for _ in range(50):
        base = free_port()
        if base + size < 65535 and not any(
            port_is_open("127.0.0.1", base + i) for i in range(1, size)
        ):
            return base
    raise AssertionError(f"no {size} consecutive free ports")


def block_count(rpc: str) -> int:
    _, body = http(
        "POST", rpc, {"jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": []}
    )
    return int(body["result"])


class DevStack:
    def __init__(self, root: Path, repo: Path) -> None:
        self.root = root
        self.repo = repo
        self.marker = uuid.uuid4().hex
        self.ports = {name: free_port() for name in ("api", "flower", "pg", "redis", "rpc", "p2p")}
        # The workers' metrics: NSL_DEV_METRICS_PORT + the process's line in the Procfile.
        self.metrics_base = free_block(len(METRICS_LINES) + 1)
        for name, line in METRICS_LINES.items():
            self.ports[f"{name} metrics"] = self.metrics_base + line
        env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
        env.update(
            NSL_API_PORT=str(self.ports["api"]),
            NSL_FLOWER_PORT=str(self.ports["flower"]),
            NSL_DEV_PG_PORT=str(self.ports["pg"]),
            NSL_DEV_REDIS_PORT=str(self.ports["redis"]),
            NSL_DEV_NEO_RPC_PORT=str(self.ports["rpc"]),
            NSL_DEV_NEO_P2P_PORT=str(self.ports["p2p"]),
            NSL_API_WORKERS="1",
            NSL_WORKER_CONCURRENCY="1",
            NSL_E2E_MARKER=self.marker,
            NSL_DEV_METRICS_PORT=str(self.metrics_base),
            # The report walk-through's function reads the report from this machine's API.
            NSL_FETCH_ALLOW="127.0.0.1",
        )
        self.env = env
        self.traced_execution = 0
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.rpc = f"http://127.0.0.1:{self.ports['rpc']}"

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        log = (self.root / "dev.log").open("ab")
        # Its own process group, like a shell job: Ctrl-C goes to the whole group.
        proc = subprocess.Popen(
            [sys.executable, "-m", "neosl_devstack.cli", "--dir", str(self.root / ".dev"), "up"],
            cwd=self.repo,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            # Whatever failed: nothing of this stack may hold ports or folders after the test.
            self.kill(proc)
            log.close()

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL `neosl-dev up` and every process of its tree or with our marker."""
        tree = []
        with suppress(psutil.NoSuchProcess):
            tree = psutil.Process(proc.pid).children(recursive=True)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        found = {p.pid: p for p in tree}
        found.update((p.pid, p) for p in self.marked())
        for p in found.values():
            with suppress(psutil.NoSuchProcess):
                p.kill()
        proc.wait()
        psutil.wait_procs(list(found.values()), timeout=30)

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            assert proc.poll() is None, self.log()
            try:
                if http("GET", f"{self.api}/readyz")[0] == 200:
                    return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"not ready in {timeout} s:\n{self.log()}")

    def ctrl_c(self, proc: subprocess.Popen[bytes]) -> None:
        # A terminal's Ctrl-C: SIGINT to the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)

    def sigterm(self, proc: subprocess.Popen[bytes]) -> None:
        # `kill PID`, as a process supervisor would: only the main process is told.
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    def marked(self) -> list[psutil.Process]:
        """The living processes whose environment holds this stack's marker."""
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.environ().get("NSL_E2E_MARKER") == self.marker and p.status() != "zombie":
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def leftovers(self) -> list[str]:
        return [f"{p.pid} {' '.join(p.info['cmdline'] or [])}" for p in self.marked()]

    def log(self) -> str:
        return (self.root / "dev.log").read_text(errors="replace")[-4000:]


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neosl_cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    result = run_cli(env, *args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def settled_action(stack: DevStack, key: str, execution_id: int, what: str) -> dict[str, Any]:
    """The one on-chain action of an execution, once the relay settled it."""

    def settled() -> dict[str, Any] | None:
        detail = http("GET", f"{stack.api}/v1/executions/{execution_id}", token=key)[1]
        (action,) = detail["actions"]
        return action if action["status"] in ("confirmed", "failed") else None

    found: dict[str, Any] = wait_until(settled, what, timeout=60, every=0.5)
    return found


def returned_item(stack: DevStack, contract: str, method: str, *params: Any) -> Any:
    """The one stack item a read-only call of ``contract.method`` returns."""
    _, answer = http(
        "POST",
        stack.rpc,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "invokefunction",
            "params": [contract, method, list(params)],
        },
    )
    (item,) = answer["result"]["stack"]
    return item


def functions_walkthrough(stack: DevStack, key: str) -> int:
    """The README's functions walk-through: deploy the example, invoke and wait, read logs.

    Runs after the gas walk-through, so the tenant can pay the dev stack's small price.
    """
    source = (stack.repo / "examples/functions/hello.js").read_text()
    status, fn = http(
        "POST", f"{stack.api}/v1/functions", {"name": "hello", "source_code": source}, token=key
    )
    assert status == 201, fn
    status, execution = http(
        "POST",
        f"{stack.api}/v1/functions/{fn['id']}/invoke?wait=8",
        {"input": {"name": "Neo"}},
        token=key,
        headers={"X-Request-ID": REQUEST_ID},
    )
    assert status == 200, execution
    stack.traced_execution = execution["id"]
    assert execution["status"] == "succeeded", execution
    assert execution["result"] == {"greeting": "Hello, Neo!"}
    assert execution["charge_status"] == "charged", execution
    _, logs = http("GET", f"{stack.api}/v1/executions/{execution['id']}/logs", token=key)
    assert [line["message"] for line in logs["items"]] == [
        f"greeting Neo (execution {execution['id']})"
    ]
    function_id: int = fn["id"]
    return function_id


def triggers_walkthrough(stack: DevStack, key: str, function_id: int) -> None:
    """A cron trigger fires through the dev stack's clock and its execution runs."""
    status, trigger = http(
        "POST",
        f"{stack.api}/v1/triggers",
        {
            "name": "every-10s",
            "function_id": function_id,
            "trigger_type": "cron",
            "trigger_config": {"schedule": "*/10 * * * * *"},
        },
        token=key,
    )
    assert status == 201, trigger
    events_url = f"{stack.api}/v1/triggers/{trigger['id']}/events"

    def fired() -> dict[str, Any] | None:
        _, events = http("GET", events_url, token=key)
        return next((e for e in events["items"] if e["status"] == "fired"), None)

    event = wait_until(fired, "the cron trigger to fire", timeout=30)

    def finished() -> dict[str, Any] | None:
        _, execution = http("GET", f"{stack.api}/v1/executions/{event['execution_id']}", token=key)
        return execution if execution["status"] not in ("queued", "running") else None

    execution = wait_until(finished, "the fired execution to finish", timeout=30)
    assert execution["status"] == "succeeded", execution
    assert execution["trigger"]["cause"]["slot"].endswith(("0+00:00", "0Z"))
    http("POST", f"{events_url.removesuffix('/events')}/pause", token=key)


def prices_walkthrough(stack: DevStack, key: str) -> None:
    """The dev stack's public demo feeds price from its local markets, and its PriceFeed
    contract is deployed."""
    whole_log = (stack.root / "dev.log").read_text(errors="replace")
    match = re.search(r"PriceFeed contract (0x[0-9a-f]{40})", whole_log)
    assert match is not None, stack.log()
    _, state = http(
        "POST",
        stack.rpc,
        {"jsonrpc": "2.0", "id": 1, "method": "getcontractstate", "params": [match.group(1)]},
    )
    assert state["result"]["manifest"]["name"] == "PriceFeed", state
    status, listed = http("GET", f"{stack.api}/v1/price-feeds", token=key)
    assert status == 200, listed
    public = {f["asset_pair"]: f for f in listed["items"] if f["public"]}
    assert set(public) == {"NEO/USD", "GAS/USD"}, listed
    latest_url = f"{stack.api}/v1/price-feeds/{public['NEO/USD']['id']}/latest"

    def priced() -> dict[str, Any] | None:
        _, latest = http("GET", latest_url, token=key)
        return latest if latest["price"] is not None else None

    latest = wait_until(priced, "a NEO/USD price", timeout=60)
    assert latest["round"]["status"] == "priced", latest
    assert 10 < float(latest["price"]["price"]) < 14

    # The operator's account pays; the first round is published through the relay, and the
    # contract holds what the API says was published last.
    def published() -> dict[str, Any] | None:
        _, latest = http("GET", latest_url, token=key)
        found: dict[str, Any] | None = latest["published"]
        return found

    on_record = wait_until(published, "a NEO/USD round published on chain", timeout=90)
    assert on_record["contract"] == match.group(1)
    stored = returned_item(
        stack, match.group(1), "get_latest", {"type": "String", "value": on_record["key"]}
    )
    price, _stamp, round_id = (int(item["value"]) for item in stored["value"])
    # A newer round may have landed since the API was read; never an older one.
    assert round_id >= on_record["round_id"], (stored, on_record)
    if round_id == on_record["round_id"]:
        assert Decimal(price) / 10**8 == Decimal(on_record["price"])


def actions_walkthrough(stack: DevStack, env: dict[str, str], key: str) -> None:
    """The README's on-chain walk-through: the signer, a Consumer it owns, a function that
    reads it with neo.call and writes it with neo.invoke through the relay.

    Runs after the gas walk-through: the tenant pays the fees, the hot wallet holds GAS.
    """
    status, signer = http("GET", f"{stack.api}/v1/neo/signer", token=key)
    assert status == 200, signer
    consumer = cli(env, "devnet", "deploy", "consumer", "--owner", signer["address"]).strip()
    source = (stack.repo / "examples/functions/onchain.js").read_text()
    status, fn = http(
        "POST", f"{stack.api}/v1/functions", {"name": "onchain", "source_code": source}, token=key
    )
    assert status == 201, fn
    invoke_url = f"{stack.api}/v1/functions/{fn['id']}/invoke?wait=10"
    body = {"input": {"contract": consumer, "key": "greeting"}}
    status, first = http("POST", invoke_url, body, token=key)
    assert (status, first["status"]) == (200, "succeeded"), first
    assert first["result"] == {"current": "", "position": 0}

    action = settled_action(stack, key, first["id"], "the action to settle")
    assert action["status"] == "confirmed", action
    assert float(action["fee_charged"]) > 0
    status, second = http("POST", invoke_url, body, token=key)
    assert (status, second["result"]["current"]) == (200, "!"), second
    assert "0 mismatched" in cli(env, "ledger", "verify")


def reports_walkthrough(stack: DevStack, env: dict[str, str], key: str) -> None:
    """A feed of a pair outside NEO, GAS, BTC and ETH over the exchanges whose market lists
    name it; then the whole pull path: examples/functions/settle.js reads the public NEO/USD
    feed's signed report and asks for a PriceConsumer's settle, which has the PriceFeed
    contract verify it on chain, and the consumer keeps the report's price."""

    def flm_sources() -> list[dict[str, Any]] | None:
        _, found = http("GET", f"{stack.api}/v1/price-sources?pair=FLM/USD", token=key)
        return found if len(found) >= 3 else None

    sources = wait_until(flm_sources, "market lists naming FLM/USD", timeout=60)
    markets = {s["name"]: s["market"] for s in sources}
    assert (markets["coinbase"], markets["binance"]) == ("FLM/USD", "FLM/USDT"), markets
    body = {
        "asset_pair": "FLM/USD",
        "frequency": 10,
        "sources": ["coinbase", "kraken", "binance", "okx"],
        "min_sources": 3,
        "usdt_as_usd": True,
    }
    status, flm = http("POST", f"{stack.api}/v1/price-feeds", body, token=key)
    assert status == 201, flm

    def flm_priced() -> dict[str, Any] | None:
        _, latest = http("GET", f"{stack.api}/v1/price-feeds/{flm['id']}/latest", token=key)
        return latest if latest["price"] is not None else None

    latest = wait_until(flm_priced, "an FLM/USD price", timeout=60)
    assert 0.04 < float(latest["price"]["price"]) < 0.06, latest
    read = {r["source"]: r.get("market") for r in latest["round"]["source_data"]}
    assert (read["binance"], read["kraken"]) == ("FLM/USDT", "FLM/USD"), read

    whole_log = (stack.root / "dev.log").read_text(errors="replace")
    pricefeed = re.search(r"PriceFeed contract (0x[0-9a-f]{40})", whole_log)
    assert pricefeed is not None
    _, listed = http("GET", f"{stack.api}/v1/price-feeds?asset_pair=NEO/USD", token=key)
    (neo_usd,) = [f for f in listed["items"] if f["public"]]
    data = json.dumps([{"$neo": "Hash160", "value": pricefeed.group(1)}, neo_usd["id"]])
    consumer = cli(env, "devnet", "deploy", "price_consumer", "--data", data).strip()
    source = (stack.repo / "examples/functions/settle.js").read_text()
    status, fn = http(
        "POST", f"{stack.api}/v1/functions", {"name": "settle", "source_code": source}, token=key
    )
    assert status == 201, fn
    invoke = {"input": {"api": stack.api, "feed": neo_usd["id"], "consumer": consumer}}
    status, run = http(
        "POST", f"{stack.api}/v1/functions/{fn['id']}/invoke?wait=10", invoke, token=key
    )
    assert (status, run["status"]) == (200, "succeeded"), run

    action = settled_action(stack, key, run["id"], "the settle to be on chain")
    assert action["status"] == "confirmed", action
    kept = returned_item(stack, consumer, "last_price")
    # The report's price: an integer, 8 decimals.
    assert int(kept["value"]) == int(run["result"]["price"]), (kept, run)


def gas_walkthrough(stack: DevStack, env: dict[str, str], key: str, elsewhere: Path) -> str:
    """The README's gas walk-through: add address, fund, deposit, balance, withdraw.

    ``env`` is what `neosl-dev env` exported; the faucet runs in ``elsewhere``, a folder
    unrelated to the repository and the dev stack, as from any folder of a user's shell.
    """
    address, wif = (line.split()[1] for line in cli(env, "devnet", "keygen").splitlines()[:2])
    query = urllib.parse.urlencode({"address": address})
    status, challenge = http("GET", f"{stack.api}/v1/gas/accounts/challenge?{query}", token=key)
    assert status == 200, challenge
    proof = json.loads(cli(env, "devnet", "sign-message", wif, challenge["message"]))
    assert proof["address"] == address
    status, account = http("POST", f"{stack.api}/v1/gas/accounts", proof, token=key)
    assert status == 201, account
    assert account["verified"] is True

    no_wallet = {k: v for k, v in env.items() if k != "NSL_DEVNET_WALLET"}
    refused = run_cli(no_wallet, "devnet", "fund", address, "10", cwd=elsewhere)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert 'eval "$(neosl-dev env)"' in refused.stderr

    cli(env, "devnet", "fund", address, "10", cwd=elsewhere)
    with NeoRpc([stack.rpc]) as rpc:
        wait_until(
            lambda: rpc.gas_balance(address) == 10 * 10**8, "the faucet's 10 GAS", timeout=60
        )
    _, deposit = http("GET", f"{stack.api}/v1/gas/deposit-address", token=key)
    cli({**env, "NSL_DEVNET_SENDER_WIF": wif}, "devnet", "send", deposit["address"], "5")
    acct_url = f"{stack.api}/v1/gas/accounts/{account['id']}"
    wait_until(
        lambda: http("GET", acct_url, token=key)[1]["balance"] == "5", "the deposit", timeout=60
    )

    req = urllib.request.Request(
        f"{acct_url}/withdraw", data=json.dumps({"amount": "2"}).encode(), method="POST"
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Idempotency-Key", "walkthrough-1")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202
        withdrawal = json.loads(resp.read())
    tx_url = f"{stack.api}/v1/gas/transactions/{withdrawal['id']}"
    final = wait_until(
        lambda: (body := http("GET", tx_url, token=key)[1])["status"] != "pending" and body,
        "the withdrawal to settle",
        timeout=60,
        every=0.5,
    )
    assert final["status"] == "confirmed", final
    assert http("GET", acct_url, token=key)[1]["balance"] == "3"
    assert "0 mismatched" in cli(env, "ledger", "verify")
    return wif


def secrets_walkthrough(stack: DevStack, key: str) -> list[str]:
    """A secret read by a function and a webhook's signing secret: what the tenant holds
    that no log may show. Returns them."""
    value = f"s3cret-{uuid.uuid4().hex}"
    status, stored = http("PUT", f"{stack.api}/v1/secrets/API_TOKEN", {"value": value}, token=key)
    assert status == 201, stored
    source = "function main(input, ctx) { return {length: ctx.secrets.API_TOKEN.length}; }"
    status, fn = http(
        "POST",
        f"{stack.api}/v1/functions",
        {"name": "secretive", "source_code": source, "secrets": ["API_TOKEN"]},
        token=key,
    )
    assert status == 201, fn
    status, execution = http(
        "POST", f"{stack.api}/v1/functions/{fn['id']}/invoke?wait=8", {"input": {}}, token=key
    )
    assert (status, execution["result"]) == (200, {"length": len(value)}), execution
    status, hook = http(
        "POST",
        f"{stack.api}/v1/triggers",
        {"name": "hook", "function_id": fn["id"], "trigger_type": "webhook"},
        token=key,
    )
    assert status == 201, hook
    return [value, hook["webhook_secret"]]


def metrics_walkthrough(stack: DevStack) -> None:
    """Every worker process exports its figures on its own port, counted across its pool's
    processes, after the walk-throughs gave them work."""
    port = {name: stack.metrics_base + line for name, line in METRICS_LINES.items()}

    def at_least(name: str, metric: str, labels: dict[str, str], least: float) -> None:
        key = (metric, tuple(sorted(labels.items())))
        wait_until(
            lambda: scrape(port[name]).get(key, -1) >= least or None,
            f"{name}: {metric}{labels} >= {least}",
            timeout=60,
        )

    ran = {"outcome": "succeeded"}
    at_least(
        "executor", "neosl_task_runs_total", {**ran, "task": "neosl.executor.run_execution"}, 3
    )
    at_least(
        "scheduler", "neosl_task_runs_total", {**ran, "task": "neosl.scheduler.follow_chain"}, 1
    )
    at_least("scheduler", "neosl_chain_follower_next_block", {}, 1)
    at_least("scheduler-clock", "neosl_triggers_fired_total", {}, 1)
    at_least("pricefeed", "neosl_queue_length", {"queue": "pricefeed"}, 0)
    at_least("pricefeed", "neosl_price_rounds_total", {"status": "priced"}, 1)
    at_least(
        "gasbank", "neosl_relay_settled_total", {"kind": "withdrawal", "outcome": "confirmed"}, 1
    )
    at_least("gasbank", "neosl_relay_settled_total", {"kind": "action", "outcome": "confirmed"}, 1)
    ledger = scrape(port["gasbank"])
    assert ledger[("neosl_hot_wallet_balance_gas", ())] > 0
    assert ledger[("neosl_ledger_mismatched_accounts", ())] == 0
    # The API's metrics are on its metrics port, from the gunicorn master, never on the
    # public port.
    assert http("GET", f"{stack.api}/metrics")[0] == 404
    api = scrape(port["api"])
    assert (
        api[
            (
                "neosl_http_requests_total",
                (("method", "GET"), ("route", "/readyz"), ("status", "200")),
            )
        ]
        >= 1
    )
    for name in port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port[name]}/healthz", timeout=10) as resp:
            assert resp.status == 200, name


def backup_and_restore(stack: DevStack, env: dict[str, str], folder: Path) -> None:
    """docs/operations.md's backup: `pg_dump` of the running stack's database, restored with
    `pg_restore` into a freshly started PostgreSQL, passes `neosl db status` and
    `neosl ledger verify`, holding the ledger as it was when dumped."""
    bin_dir = BIN_DIR
    source = make_url(env["DATABASE_URL"]).set(drivername="postgresql")
    dump = folder / "neosl.dump"
    # The stack keeps working while it is dumped (price publications are charged): the
    # copy holds at least what was there before and at most what is there after.
    before = ledger_rows(source.render_as_string(hide_password=False))
    subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "--format=custom",
            f"--file={dump}",
            source.render_as_string(hide_password=False),
        ],
        check=True,
        capture_output=True,
    )
    with EmbeddedPostgres(folder / "restored", free_port(), durable=False) as fresh:
        assert isinstance(fresh, EmbeddedPostgres)
        restored = fresh.ensure_database("neosl_restored")
        target = make_url(restored).set(drivername="postgresql")
        subprocess.run(
            [
                str(bin_dir / "pg_restore"),
                "--no-owner",
                f"--dbname={target.render_as_string(hide_password=False)}",
                str(dump),
            ],
            check=True,
            capture_output=True,
        )
        there = {**env, "DATABASE_URL": restored}
        assert run_cli(there, "db", "status").returncode == 0
        verified = cli(there, "ledger", "verify")
        assert "0 mismatched" in verified
        after = ledger_rows(source.render_as_string(hide_password=False))
        copied = ledger_rows(target.render_as_string(hide_password=False))
        assert 0 < before <= copied <= after


def ledger_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM transactions").fetchone()
    assert row is not None
    return int(row[0])


def log_lines(stack: DevStack) -> list[tuple[str, dict[str, Any]]]:
    """The dev stack's log: (process, record) for each JSON line a process wrote."""
    found = []
    for line in (stack.root / "dev.log").read_text(errors="replace").splitlines():
        prefix, sep, rest = line.partition(" | ")
        if sep and rest.startswith("{"):
            try:
                found.append((prefix.split()[-1], json.loads(rest)))
            except json.JSONDecodeError:
                continue
    return found


def test_dev_stack_end_to_end(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, repo_root: Path
) -> None:
    stack = DevStack(tmp_path, repo_root)
    with stack.running() as proc:
        seconds = stack.wait_ready(proc)
        print(f"dev stack ready in {seconds:.1f} s")
        assert seconds < 60

        status, reg = http(
            "POST",
            f"{stack.api}/v1/auth/register",
            {"username": "alice", "email": "alice@example.com", "password": PASSWORD},
        )
        assert status == 201, reg
        status, me = http("GET", f"{stack.api}/v1/me", token=reg["api_key"])
        assert (status, me["username"]) == (200, "alice")
        status, rotated = http("POST", f"{stack.api}/v1/me/api-key", token=reg["api_key"])
        assert status == 201
        assert http("GET", f"{stack.api}/v1/me", token=reg["api_key"])[0] == 401
        assert http("GET", f"{stack.api}/v1/me", token=rotated["api_key"])[0] == 200
        assert http("GET", f"{stack.api}/docs")[0] == 200

        flower = f"http://127.0.0.1:{stack.ports['flower']}"
        with urllib.request.urlopen(f"{flower}/", timeout=10) as resp:
            assert resp.status == 200

        def rounds_in_flower() -> list[dict[str, Any]] | None:
            """The price rounds Flower's Tasks view lists (its table's own request)."""
            query = "draw=1&start=0&length=1000&order[0][column]=0&columns[0][data]=name"
            with urllib.request.urlopen(f"{flower}/tasks/datatable?{query}", timeout=10) as r:
                rows = json.load(r)["data"]
            found = [t for t in rows if t.get("name") == "neosl.pricefeed.run_round"]
            return found or None

        # The dev stack's public feeds run rounds: tasks of the pricefeed worker.
        listed = wait_until(rounds_in_flower, "price rounds in Flower's Tasks view", timeout=60)
        assert {str(t["worker"]).split("@")[0] for t in listed} == {"pricefeed"}, listed

        first = block_count(stack.rpc)
        wait_until(lambda: block_count(stack.rpc) > first, "a new block", timeout=30)

        env_out = subprocess.run(
            [sys.executable, "-m", "neosl_devstack.cli", "--dir", str(tmp_path / ".dev"), "env"],
            env=stack.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cli_env = dict(stack.env)
        for line in env_out.splitlines():
            # As the shell reads `export KEY=VALUE` when it evaluates the output.
            key, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
            cli_env[key] = value
        wallet = tmp_path / ".dev" / "neo" / "committee-wallet.json"
        assert cli_env["NSL_DEVNET_WALLET"] == str(wallet.resolve())
        ping = subprocess.run(
            [sys.executable, "-m", "neosl_cli.main", "workers", "ping", "--timeout", "30"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        assert ping.returncode == 0, ping.stdout + ping.stderr + stack.log()
        assert ping.stdout.count(": ok") == 4

        wif = gas_walkthrough(
            stack, cli_env, rotated["api_key"], tmp_path_factory.mktemp("elsewhere")
        )
        hello = functions_walkthrough(stack, rotated["api_key"])
        triggers_walkthrough(stack, rotated["api_key"], hello)
        prices_walkthrough(stack, rotated["api_key"])
        actions_walkthrough(stack, cli_env, rotated["api_key"])
        reports_walkthrough(stack, cli_env, rotated["api_key"])
        tenant_secrets = secrets_walkthrough(stack, rotated["api_key"])
        metrics_walkthrough(stack)
        backup_and_restore(stack, cli_env, tmp_path_factory.mktemp("backup"))

        stack.ctrl_c(proc)
        assert proc.returncode == 0 or proc.returncode == 130, stack.log()

    assert stack.leftovers() == []
    for name, port in stack.ports.items():
        assert not port_is_open("127.0.0.1", port), f"{name} port {port} still open"

    # The logs: JSON lines; the invoke's request id followed into the executor with the
    # execution's id.
    records = log_lines(stack)
    assert {process for process, _ in records} >= {
        "api",
        "executor",
        "scheduler",
        "scheduler-clock",
        "pricefeed-clock",
        "gasbank",
    }
    traced = [(process, r) for process, r in records if r.get("request_id") == REQUEST_ID]
    assert any(p == "api" and r["logger"] == "neosl_api.access" for p, r in traced), traced
    assert any(
        p == "executor" and r.get("execution_id") == stack.traced_execution for p, r in traced
    ), traced

    # Same data folder again: the account and the chain are still there.
    with stack.running() as proc:
        stack.wait_ready(proc)
        status, token = http(
            "POST", f"{stack.api}/v1/auth/login", {"username": "alice", "password": PASSWORD}
        )
        assert status == 200, token
        assert block_count(stack.rpc) >= first
        stack.sigterm(proc)
    assert stack.leftovers() == []
    # No secret the run created or used is in any process's output, both runs over.
    stored = (tmp_path / ".dev" / "secrets.env").read_text().splitlines()
    keys = [line.split("=", 1)[1] for line in stored if line.startswith(SECRET_VARIABLES)]
    assert len(keys) == len(SECRET_VARIABLES)
    whole = (stack.root / "dev.log").read_text(errors="replace")
    for secret in [
        PASSWORD,
        reg["api_key"],
        rotated["api_key"],
        token["access_token"],
        wif,
        *tenant_secrets,
        *keys,
    ]:
        assert len(secret) >= 8
        assert secret not in whole, f"a secret is in the logs: {secret[:4]}…"
    for name, port in stack.ports.items():
        assert not port_is_open("127.0.0.1", port), f"{name} port {port} still open"
