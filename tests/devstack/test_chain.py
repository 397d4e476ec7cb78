"""`neosl-dev chain`: the dev chain's node alone, as the dev chain container runs it.

It serves RPC on the host it is given (every interface in a container), prints its URL,
answers the image's health check, stops cleanly on SIGTERM or SIGINT, and exits with an
error when the node dies under it. EmbeddedNeo keeps
listening on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
import yaml

from neosl_devstack.neo import EmbeddedNeo, connect_host, listen_address, neogo_binary
from neosl_devstack.servers import free_port, port_is_open
from tests.processes import kill, spawn
from tests.serving import serving
from tests.waiting import wait_until

pytestmark = pytest.mark.neo

ROOT = Path(__file__).resolve().parents[2]
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the dev chain container listens on


def block_count(url: str) -> int | None:
    """The node's getblockcount, or None while it does not answer."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            result = json.load(response)["result"]
    except (OSError, ValueError, KeyError):
        return None
    return result if isinstance(result, int) else None


def healthcheck(rpc_port: int) -> list[str]:
    """The dev chain image's HEALTHCHECK command, aimed at ``rpc_port``."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "devstack" / "Dockerfile").read_text())
    (line,) = [ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK ")]
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    assert "127.0.0.1:50332" in command[-1]
    return [sys.executable, *command[1:-1], command[-1].replace(":50332", f":{rpc_port}")]


def healthy(rpc_port: int) -> bool:
    done = subprocess.run(healthcheck(rpc_port), capture_output=True, check=False, timeout=30)
    return done.returncode == 0


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "node dies"])
def test_chain_serves_rpc_on_every_interface_until_stopped(tmp_path: Path, stop: str) -> None:
    rpc, p2p = free_port(), free_port()
    log = tmp_path / "chain.log"
    args = [
        "neosl_devstack.cli",
        "chain",
        "--host",
        EVERY_INTERFACE,
        "--rpc-port",
        str(rpc),
        "--p2p-port",
        str(p2p),
        "--dir",
        str(tmp_path / "neo"),
        "--block-ms",
        "200",
    ]
    proc = spawn(args, dict(os.environ), log)
    try:
        url = f"http://127.0.0.1:{rpc}"
        wait_until(
            lambda: f"Neo N3 RPC {url} " in log.read_text(), "the RPC URL printed", timeout=90
        )
        first = wait_until(lambda: block_count(url), "getblockcount over RPC")
        wait_until(lambda: (block_count(url) or 0) > first, "a new block")
        if sys.platform == "linux":
            # All of 127/8 is this machine on Linux, but a server bound to 127.0.0.1 answers
            # on that address only: this one listens on every interface.
            assert block_count(f"http://127.0.0.2:{rpc}") is not None
        assert healthy(rpc)
        assert (tmp_path / "neo" / "committee-wallet.json").is_file()
        assert proc.poll() is None

        if stop == "node dies":
            # The node's process, which runs in a session of its own.
            (node,) = psutil.Process(proc.pid).children()
            node.kill()
            assert proc.wait(timeout=30) == 1, log.read_text()
            assert "the node exited with code" in log.read_text()
        else:
            proc.send_signal(signal.Signals[stop])
            assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        kill(proc)
    output = log.read_text()
    assert output.rstrip().endswith("neosl-dev: stopped"), output
    # The node went with it: nothing listens on its ports any more.
    assert not port_is_open("127.0.0.1", rpc)
    assert not port_is_open("127.0.0.1", p2p)
    assert not healthy(rpc)


def test_chain_fails_with_the_nodes_log_when_it_cannot_start(tmp_path: Path) -> None:
    datadir = tmp_path / "neo"
    # A chain without its committee wallet cannot start (a new key would not match it).
    (datadir / "chain").mkdir(parents=True)
    ports = ["--rpc-port", str(free_port()), "--p2p-port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "neosl_devstack.cli", "chain", "--dir", str(datadir), *ports],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "committee wallet" in done.stderr
    assert "stopped" not in done.stdout


def _addresses(node: EmbeddedNeo) -> tuple[list[str], list[str]]:
    node.prepare()
    config = yaml.safe_load(node.config_path.read_text())["ApplicationConfiguration"]
    return config["RPC"]["Addresses"], config["P2P"]["Addresses"]


def test_the_node_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    default = EmbeddedNeo(tmp_path / "default", 41001, 41002)
    assert _addresses(default) == (["127.0.0.1:41001"], ["127.0.0.1:41002"])
    assert default.url == "http://127.0.0.1:41001"

    everywhere = EmbeddedNeo(tmp_path / "everywhere", 41001, 41002, host=EVERY_INTERFACE)
    assert _addresses(everywhere) == (["0.0.0.0:41001"], ["0.0.0.0:41002"])
    # Clients on this machine reach it through loopback.
    assert everywhere.url == "http://127.0.0.1:41001"


def test_an_executable_node_binary_is_run_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the image the node's user does not own the binary, so may not chmod it."""

    def not_the_owner(self: Path, mode: int) -> None:
        raise PermissionError(f"[Errno 1] Operation not permitted: {self}")

    monkeypatch.setattr(Path, "chmod", not_the_owner)
    binary = neogo_binary()
    assert binary.name == "neogo"
    assert os.access(binary, os.X_OK)


@pytest.mark.parametrize(
    ("host", "listen", "connect"),
    [
        ("127.0.0.1", "127.0.0.1:1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0:1", "127.0.0.1"),  # noqa: S104
        ("::", "[::]:1", "[::1]"),
        ("::1", "[::1]:1", "[::1]"),
        ("10.1.2.3", "10.1.2.3:1", "10.1.2.3"),
        ("neo.internal", "neo.internal:1", "neo.internal"),
    ],
)
def test_listen_and_connect_addresses(host: str, listen: str, connect: str) -> None:
    assert listen_address(host, 1) == listen
    assert connect_host(host) == connect


class _Rpc(BaseHTTPRequestHandler):
    answer: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 1, "result": 7}, True),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "not ready"}}, False),
        ({"jsonrpc": "2.0", "id": 1, "result": "7"}, False),
    ],
)
def test_the_health_check_wants_a_block_count(answer: dict[str, Any], expected: bool) -> None:
    handler = type("Answer", (_Rpc,), {"answer": answer})
    with serving(HTTPServer(("127.0.0.1", 0), handler)) as server:
        assert healthy(server.server_address[1]) is expected
