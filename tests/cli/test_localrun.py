"""`neosl functions run`: the README's examples in the real sandbox, with no server at all."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import run_cli
from tests.serving import serving


def bare_env(**extra: str) -> dict[str, str]:
    """No DATABASE_URL, REDIS_URL or node: the command must need none."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {**keep, **extra}


@pytest.fixture
def price_server() -> Iterator[str]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-Api-Key", ""))
            body = json.dumps({"price": "12.5" if self.path == "/a" else "13.5"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    assert seen == ["k3y", "k3y"]


def test_hello_example_runs(repo_root: Path) -> None:
    result = run_cli(
        bare_env(),
        "functions",
        "run",
        str(repo_root / "examples/functions/hello.js"),
        "--input",
        '{"name": "Neo"}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"greeting": "Hello, Neo!"}
    assert "log: greeting Neo" in result.stderr
    assert "status: succeeded" in result.stderr


def test_quote_example_fetches_with_its_secret(repo_root: Path, price_server: str) -> None:
    result = run_cli(
        bare_env(NSL_FETCH_ALLOW="127.0.0.1"),
        "functions",
        "run",
        str(repo_root / "examples/functions/quote.js"),
        "--input",
        json.dumps({"urls": [f"{price_server}/a", f"{price_server}/b"]}),
        "--secret",
        "API_KEY=k3y",
        "--timeout",
        "10",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"average": 13, "prices": [12.5, 13.5]}


def test_the_ssrf_guard_holds_without_an_allowance(repo_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "probe.js"
    source.write_text(
        "async function main() { return (await fetch('http://127.0.0.1:9/')).status }"
    )
    result = run_cli(bare_env(), "functions", "run", str(source), "--timeout", "5")
    assert result.returncode == 1
    assert "not allowed" in result.stderr


@pytest.mark.parametrize(
    ("source", "args", "code", "message"),
    [
        ("function main() { throw new Error('nope') }", (), 1, "nope"),
        ("function main() { while (true) {} }", ("--timeout", "1"), 1, "timeout"),
        ("function main( {", (), 1, "does not compile"),
        ("function main() {}", ("--input", "{bad"), 2, "not JSON"),
        ("function main() {}", ("--secret", "NOEQUALS"), 2, "NAME=VALUE"),
        ("function main() {}", ("--memory", "4"), 2, "--memory"),
    ],
)
def test_failures_exit_non_zero(
    tmp_path: Path, source: str, args: tuple[str, ...], code: int, message: str
) -> None:
    path = tmp_path / "f.js"
    path.write_text(source)
    result = run_cli(bare_env(), "functions", "run", str(path), *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
