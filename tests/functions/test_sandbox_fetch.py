"""fetch() in the sandbox, against a real local HTTP server, through a real fetcher.

The fetcher here is a few lines of httpx written for these tests (the service's own, with
its SSRF guard, lives in neosl.functions.netguard and is tested there).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from neosl.functions.fetching import (
    BODY_TOO_LARGE,
    HEADERS_TOO_LARGE,
    MAX_BODY_BYTES,
    MAX_HEADERS_BYTES,
    MAX_REQUESTS_PER_EXECUTION,
    MAX_URL_BYTES,
    METHOD_TOO_LONG,
    URL_TOO_LONG,
    FetchRequest,
    FetchResponse,
    headers_size,
)
from neosl.functions.sandbox import Limits, Outcome, RunRequest, SandboxPool, protocol
from tests.serving import serving

TIMEOUT = 1.0
SLACK = 0.25
SLOW_SECONDS = 0.5


class HttpxFetcher:
    """Performs a request as it is, answering errors instead of raising them."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=10.0)
        self.calls = 0
        # The sizes of every request it got: URL and headers (as MAX_HEADERS_BYTES counts).
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, request: FetchRequest) -> FetchResponse:
        self.calls += 1
        self.sizes.append((len(request.url.encode()), headers_size(request.headers)))
        try:
            response = self.client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        except httpx.HTTPError as exc:
            return FetchResponse(error=f"fetch failed: {type(exc).__name__}")
        return FetchResponse(
            status=response.status_code,
            headers=dict(response.headers),
            body=response.text,
            url=str(response.url),
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True
    release = threading.Event()  # lets /hang answer, at the end of the tests


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: str, content_type: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Served-By", "test")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._answer(200, json.dumps({"slow": True}))
        elif self.path == "/hang":
            self.server.release.wait(30)
            self._answer(200, "{}")
        elif self.path == "/missing":
            self._answer(404, "not here", "text/plain")
        else:
            self._answer(200, json.dumps({"path": self.path}))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if self.path == "/length":
            self._answer(200, json.dumps({"length": len(body), "distinct": sorted(set(body))}))
            return
        echo = {"method": "POST", "body": body, "token": self.headers.get("X-Token")}
        self._answer(201, json.dumps(echo))


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(Server(("127.0.0.1", 0), Handler)) as server:
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.release.set()


@pytest.fixture(scope="module")
def fetcher() -> Iterator[HttpxFetcher]:
    fetcher = HttpxFetcher()
    yield fetcher
    fetcher.client.close()


@pytest.fixture(scope="module")
def pool(fetcher: HttpxFetcher) -> Iterator[SandboxPool]:
    with SandboxPool(max_processes=2, fetcher=fetcher) as pool:
        pool.warm(1)
        yield pool


def run(pool: SandboxPool, source: str, base_url: str) -> Outcome:
    return pool.run(
        RunRequest(source, input={"base": base_url}, limits=Limits(timeout_seconds=TIMEOUT))
    )


def test_get_json_text_and_headers(pool: SandboxPool, base_url: str) -> None:
    source = """
    async function main({base}) {
      const r = await fetch(base + '/hello');
      const data = await r.json();
      return {
        ok: r.ok, status: r.status, statusText: r.statusText, url: r.url, data,
        byGet: r.headers.get('Content-Type'), byKey: r.headers['x-served-by'],
        absent: r.headers.get('x-nothing'), text: await r.text(),
      };
    }
    """
    outcome = run(pool, source, base_url)
    assert outcome.status == "succeeded", outcome
    assert outcome.result == {
        "ok": True,
        "status": 200,
        "statusText": "OK",
        "url": base_url + "/hello",
        "data": {"path": "/hello"},
        "byGet": "application/json",
        "byKey": "test",
        "absent": None,
        "text": '{"path": "/hello"}',
    }
    assert outcome.fetches == 1


def test_post_with_body_and_headers(pool: SandboxPool, base_url: str) -> None:
    source = """
    async function main({base}) {
      const r = await fetch(base + '/echo', {
        method: 'post', headers: {'X-Token': 't0k'}, body: JSON.stringify({n: 1}),
      });
      return [r.status, await r.json()];
    }
    """
    outcome = run(pool, source, base_url)
    assert outcome.result == [201, {"method": "POST", "body": '{"n":1}', "token": "t0k"}]


def test_http_error_status_is_not_a_rejection(pool: SandboxPool, base_url: str) -> None:
    source = """
    async function main({base}) {
      const r = await fetch(base + '/missing');
      return [r.ok, r.status, r.statusText, await r.text()];
    }
    """
    assert run(pool, source, base_url).result == [False, 404, "Not Found", "not here"]


def test_fetcher_error_rejects_with_a_type_error(pool: SandboxPool) -> None:
    source = """
    async function main() {
      try { await fetch('http://127.0.0.1:1/'); return 'fetched'; }
      catch (e) { return [e instanceof TypeError, e.message]; }
    }
    """
    outcome = run(pool, source, "")
    assert outcome.result == [True, "fetch failed: ConnectError"]
    assert outcome.fetches == 1


def test_request_body_and_headers_must_be_strings(pool: SandboxPool, base_url: str) -> None:
    source = """
    async function main({base}) {
      const refused = [];
      for (const init of [{body: 5}, {body: {a: 1}}, {headers: {'X-N': 1}}, {method: 7}, 'x']) {
        try { await fetch(base + '/echo', init); refused.push('sent'); }
        catch (e) { refused.push(e instanceof TypeError ? e.message : 'other'); }
      }
      try { await fetch(42); } catch (e) { refused.push(e.message); }
      return refused;
    }
    """
    outcome = run(pool, source, base_url)
    assert outcome.status == "succeeded", outcome
    assert outcome.result == [
        "fetch: body must be a string",
        "fetch: body must be a string",
        "fetch: header X-N must be a string",
        "fetch: method must be a string",
        "fetch: init must be an object",
        "fetch: the URL must be a string",
    ]
    assert outcome.fetches == 0


def test_fetches_in_flight_together_run_concurrently(pool: SandboxPool, base_url: str) -> None:
    source = """
    async function main({base}) {
      const responses = await Promise.all([1, 2, 3, 4, 5].map(() => fetch(base + '/slow')));
      return Promise.all(responses.map((r) => r.json()));
    }
    """
    started = time.monotonic()
    outcome = pool.run(
        RunRequest(source, input={"base": base_url}, limits=Limits(timeout_seconds=5.0))
    )
    took = time.monotonic() - started
    assert outcome.status == "succeeded", outcome
    assert outcome.result == [{"slow": True}] * 5
    assert outcome.fetches == 5
    # One after the other would take 2.5 s.
    assert SLOW_SECONDS <= took < 2 * SLOW_SECONDS


def test_the_eleventh_fetch_is_refused(
    pool: SandboxPool, base_url: str, fetcher: HttpxFetcher
) -> None:
    source = """
    async function main({base}) {
      const outcomes = [];
      for (let i = 0; i < 12; i++) {
        try { await fetch(base + '/n' + i); outcomes.push('ok'); }
        catch (e) { outcomes.push(e.message); }
      }
      return outcomes;
    }
    """
    calls = fetcher.calls
    outcome = run(pool, source, base_url)
    limit = MAX_REQUESTS_PER_EXECUTION
    refusal = f"fetch: at most {limit} requests per execution"
    assert outcome.result == ["ok"] * limit + [refusal] * 2
    assert outcome.fetches == limit
    assert fetcher.calls - calls == limit


@pytest.mark.slow
def test_hanging_fetch_times_out_without_losing_the_process(
    pool: SandboxPool, base_url: str
) -> None:
    source = """
    async function main({base}) {
      console.log('asking');
      await fetch(base + '/hang');
      return 'answered';
    }
    """
    restarts = pool.restarts
    started = time.monotonic()
    outcome = run(pool, source, base_url)
    took = time.monotonic() - started
    assert outcome.status == "timeout", outcome
    assert "waiting for fetch" in (outcome.error or "")
    assert TIMEOUT <= took < TIMEOUT + SLACK
    # The process was told to stop, not killed, and kept the logs.
    assert pool.restarts == restarts
    assert [line.message for line in outcome.logs] == ["asking"]
    after = run(pool, "async function main() { return 'next' }", base_url)
    assert after.result == "next"


def test_fetch_work_continues_while_requests_are_in_flight(
    pool: SandboxPool, base_url: str
) -> None:
    # The function computes while its request is in flight and picks the answer up later.
    source = """
    async function main({base}) {
      const pending = fetch(base + '/slow');
      let n = 0;
      for (let i = 0; i < 1e5; i++) n += i;
      const r = await pending;
      return [n, (await r.json()).slow];
    }
    """
    outcome = run(pool, source, base_url)
    assert outcome.result == [4999950000, True]


# -- bounds: refused in the sandbox, before anything reaches this process


def test_ten_fetches_of_6_mb_urls_are_refused_in_the_sandbox(
    pool: SandboxPool, base_url: str, fetcher: HttpxFetcher
) -> None:
    # The security review's attack: 60 MB of URLs for the executor to hold.
    source = """
    async function main({base}) {
      const url = base + '/' + 'a'.repeat(6 * 1024 * 1024);
      const refused = [];
      for (let i = 0; i < 10; i++) {
        try { await fetch(url); refused.push('sent'); }
        catch (e) { refused.push(e instanceof TypeError ? e.message : 'other'); }
      }
      return refused;
    }
    """
    calls = fetcher.calls
    outcome = pool.run(
        RunRequest(source, input={"base": base_url}, limits=Limits(timeout_seconds=5))
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [URL_TOO_LONG] * 10
    assert URL_TOO_LONG == "fetch: the URL is longer than 8 KB"
    # Nothing was fetched or counted, and nothing the host kept holds the URLs.
    assert (fetcher.calls - calls, outcome.fetches) == (0, 0)
    assert len(repr(outcome)) < 1000


def test_url_headers_method_and_body_bounds(
    pool: SandboxPool, base_url: str, fetcher: HttpxFetcher
) -> None:
    # Each bound exactly (sent), then one byte past it (refused); multi-byte characters count
    # their UTF-8 bytes (refused by the sandbox process, past the prelude's character count).
    source = """
    async function main({base, url, header, body}) {
      const tries = [
        [base + url, {}], [base + url + 'q', {}],
        [base + url.slice(0, 3000) + '€'.repeat(2000), {}],
        [base + '/h', {headers: {'X-A': header}}], [base + '/h', {headers: {'X-A': header + 'v'}}],
        [base + '/h', {headers: {'X-A': header.slice(0, 12000) + 'é'.repeat(12000)}}],
        [base + '/h', {headers: {'X-A': header.slice(0, 20000), 'X-B': header.slice(0, 13000)}}],
        [base + '/h', {method: 'G'.repeat(33)}],
        [base + '/echo', {method: 'POST', body}],
        [base + '/echo', {method: 'POST', body: body + 'x'}],
        [base + '/echo', {method: 'POST', body: body.slice(0, 1500000) + '€'.repeat(200000)}],
      ];
      const out = [];
      for (const [url, init] of tries) {
        try { out.push((await fetch(url, init)).status); } catch (e) { out.push(e.message); }
      }
      return out;
    }
    """
    path = "/u?" + "q" * (MAX_URL_BYTES - len(base_url) - 3)
    header = "v" * (MAX_HEADERS_BYTES - len("X-A") - 4)
    body = "b" * MAX_BODY_BYTES
    calls = fetcher.calls
    outcome = pool.run(
        RunRequest(
            source,
            input={"base": base_url, "url": path, "header": header, "body": body},
            limits=Limits(timeout_seconds=10, memory_mb=128),
        )
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [
        200,
        URL_TOO_LONG,
        URL_TOO_LONG,
        200,
        HEADERS_TOO_LARGE,
        HEADERS_TOO_LARGE,
        HEADERS_TOO_LARGE,
        METHOD_TOO_LONG,
        201,
        BODY_TOO_LARGE,
        BODY_TOO_LARGE,
    ]
    assert fetcher.calls - calls == outcome.fetches == 3
    urls, headers = zip(*fetcher.sizes[-3:], strict=True)
    assert max(urls) == MAX_URL_BYTES
    assert max(headers) == MAX_HEADERS_BYTES


def test_the_host_refuses_a_request_over_a_bound_from_a_child() -> None:
    # What a child that does not keep the bounds (taken over by tenant code) would send: the
    # pool's parser refuses it, so the run fails and the process is replaced.
    def wait(**request: object) -> bytes:
        item = {"id": 1, "url": "http://x/", "method": "GET", "headers": {}, "body": None}
        return json.dumps({"op": "wait", "fetches": [{**item, **request}]}).encode()

    assert protocol.parse_child_message(wait()) == protocol.Wait(
        [protocol.FetchItem(1, "http://x/", "GET", {}, None)]
    )
    cases = {
        URL_TOO_LONG: wait(url="http://x/" + "a" * (6 << 20)),
        HEADERS_TOO_LARGE: wait(headers={f"X-{i}": "v" * 1000 for i in range(40)}),
        METHOD_TOO_LONG: wait(method="G" * 33),
        BODY_TOO_LARGE: wait(body="é" * (MAX_BODY_BYTES // 2 + 1)),
    }
    for why, line in cases.items():
        with pytest.raises(protocol.ProtocolError, match=why):
            protocol.parse_child_message(line)


# Built-ins a function may replace, none of which the host API uses once the function runs.
# (Not Object.prototype.then, nor accessors named like fetch's options: they change what the
# function's own objects say, its init and what its promises resolve with.)
HIJACK = """
let reached = 0;
const grab = function () { reached++; return '[[[["'; };
const accessor = {__proto__: null, get: grab, set: grab, configurable: true};
for (const name of ['0', 'id', 'error', 'value']) {
  Object.defineProperty(Array.prototype, name, accessor);
  Object.defineProperty(Object.prototype, name, accessor);
}
Array.prototype.push = grab; Map.prototype.set = grab; Map.prototype.get = grab;
Object.prototype.toJSON = grab; JSON.stringify = grab; JSON.parse = grab;
Object.defineProperty = grab; Object.keys = grab; Object.create = grab; Object.hasOwn = grab;
Promise.prototype.then = grab; Promise.resolve = grab; globalThis.Promise = grab;
Function.prototype.call = grab; Function.prototype.apply = grab; Reflect.apply = grab;
String.prototype.slice = grab; String.prototype.toLowerCase = grab;
String.prototype.toUpperCase = grab; globalThis.TypeError = grab;
"""


def test_fetch_answers_correctly_whatever_built_ins_were_replaced(
    pool: SandboxPool, base_url: str
) -> None:
    source = (
        HIJACK
        + """
    async function main(input) {
      const r = await fetch(input.base + '/hello', {headers: {'X-Token': 't0k'}});
      const data = await r.json();
      const p = await fetch(input.base + '/echo', {method: 'post', body: 'x'});
      const echo = await p.text();
      return 'reached ' + reached + ' | ' + r.status + ' ' + r.statusText + ' ' +
        r.headers.get('X-Served-By') + ' ' + data.path + ' | ' + p.status + ' ' + echo;
    }
    """
    )
    outcome = run(pool, source, base_url)
    assert outcome.status == "succeeded", outcome.error
    echo = json.dumps({"method": "POST", "body": "x", "token": None})
    assert outcome.result == f"reached 0 | 200 OK test /hello | 201 {echo}"
    assert outcome.fetches == 2


@pytest.mark.slow
def test_requests_too_large_for_one_message_all_go(
    pool: SandboxPool, base_url: str, fetcher: HttpxFetcher
) -> None:
    # A body of control characters is 6 times larger once written as JSON: three of 2 MB do
    # not fit in one message of the sandbox process, which sends them one after the other.
    source = """
    async function main({base}) {
      const body = '\\x01'.repeat(2 * 1024 * 1024);
      const responses = await Promise.all(
        [1, 2, 3].map(() => fetch(base + '/length', {method: 'POST', body})));
      return Promise.all(responses.map((r) => r.json()));
    }
    """
    assert 3 * 6 * MAX_BODY_BYTES > protocol.MAX_CHILD_MESSAGE_BYTES
    calls = fetcher.calls
    outcome = pool.run(
        RunRequest(source, input={"base": base_url}, limits=Limits(timeout_seconds=10))
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [{"length": MAX_BODY_BYTES, "distinct": ["\x01"]}] * 3
    assert fetcher.calls - calls == outcome.fetches == 3
