"""A JSON-RPC proxy in front of the real Neo node that can misbehave on purpose.

Per method it passes requests through, answers with an error, holds them until released
(the caller never hears back), or forwards them and then holds the answer back (the node
acts, the caller never learns it did). Tests use it to cut a worker off mid-withdrawal.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PASS = "pass"
REJECT = "reject"
HOLD = "hold"
FORWARD_THEN_HOLD = "forward_then_hold"


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.modes: dict[str, str] = {}
        self.reject_error = {"code": -500, "message": "proxy says no"}
        self.held = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []
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
                mode = proxy.modes.get(method, PASS)
                if mode == REJECT:
                    self._answer(
                        {"jsonrpc": "2.0", "id": request.get("id"), "error": proxy.reject_error}
                    )
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
                self._answer(answer)

            def _answer(self, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
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
