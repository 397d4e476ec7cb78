"""A JSON-RPC proxy in front of the real Neo node that can misbehave on purpose.

Per method it passes requests through, answers with an error, holds them until released
(the caller never hears back), or forwards them and then holds the answer back (the node
acts, the caller never learns it did). Tests use it to cut a worker off mid-withdrawal.

It can also play a broken or lagging node: answer HTTP 500 (an endpoint that is down),
say "unknown" as neo-go does for a transaction it has not seen, answer ``getblockcount``
with the real count minus ``lag_blocks`` or with a fixed ``block_count``, and accept a
``sendrawtransaction`` without passing it on (the transaction never reaches the chain).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from neosl.neo.transfers import transaction_hash

PASS = "pass"
REJECT = "reject"
HOLD = "hold"
FORWARD_THEN_HOLD = "forward_then_hold"
HTTP_500 = "http_500"
UNKNOWN = "unknown"
LAG = "lag"  # getblockcount only: the real count minus lag_blocks
STUCK = "stuck"  # getblockcount only: block_count, whatever the node says
SWALLOW = "swallow"  # sendrawtransaction only: "accepted", but never forwarded

# What neo-go 0.120 answers for a transaction it does not know (see tests/fixtures/neo/).
UNKNOWN_ERRORS: dict[str, dict[str, Any]] = {
    "getapplicationlog": {
        "code": -105,
        "message": "Unknown script container",
        "data": "failed to locate application log: key not found",
    },
    "gettransactionheight": {"code": -103, "message": "Unknown transaction"},
    "getrawtransaction": {"code": -103, "message": "Unknown transaction"},
}


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.modes: dict[str, str] = {}
        self.reject_error = {"code": -500, "message": "proxy says no"}
        self.lag_blocks = 0
        self.block_count = 1
        self.held = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []
        # Every request's method and parameters, in order.
        self.requests: list[tuple[str, list[Any]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    request = json.loads(body)
                except ValueError:
                    request = {}
                method = str(request.get("method", ""))
                proxy.calls.append(method)
                params = request.get("params")
                proxy.requests.append((method, params if isinstance(params, list) else []))
                mode = proxy.modes.get(method, PASS)
                if mode == REJECT:
                    self._error(request, proxy.reject_error)
                    return
                if mode == UNKNOWN:
                    self._error(
                        request, UNKNOWN_ERRORS.get(method, UNKNOWN_ERRORS["gettransactionheight"])
                    )
                    return
                if mode == HTTP_500:
                    self._send(500, b"Internal Server Error", "text/plain")
                    return
                if mode == STUCK:
                    self._result(request, proxy.block_count)
                    return
                if mode == SWALLOW:
                    raw = base64.b64decode(request["params"][0])
                    self._result(request, {"hash": transaction_hash(raw)})
                    return
                if mode == HOLD:
                    proxy.held.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                answer = proxy.forward(body)
                if mode == FORWARD_THEN_HOLD:
                    proxy.held.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                if mode == LAG and isinstance(answer.get("result"), int):
                    answer = {**answer, "result": max(answer["result"] - proxy.lag_blocks, 1)}
                self._answer(answer)

            def _result(self, request: dict[str, Any], result: Any) -> None:
                self._answer({"jsonrpc": "2.0", "id": request.get("id"), "result": result})

            def _error(self, request: dict[str, Any], error: dict[str, Any]) -> None:
                self._answer({"jsonrpc": "2.0", "id": request.get("id"), "error": error})

            def _answer(self, payload: Any) -> None:
                self._send(200, json.dumps(payload).encode(), "application/json")

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, body: bytes) -> Any:
        req = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RpcProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
