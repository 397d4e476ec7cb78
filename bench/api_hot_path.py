"""The API's hot path (authenticate + one read: ``GET /v1/me``) next to a bare Flask route
that runs one ``SELECT 1``, both under gunicorn with the Procfile's settings.

Two gunicorn servers run side by side on an embedded PostgreSQL and Redis, both started
with the Procfile's ``api`` line as it stands (worker class, workers, threads, timeouts):

* the API (``neosl_api.app:create_app()``);
* ``bench/bare_app.py`` (``bare_app:create_app()``): one Flask route doing ``SELECT 1`` on an
  engine from ``neosl.db.make_engine``, so connection handling is the same;

each with its log in a file of its own in the temporary folder. ``--threads`` client
threads (one keep-alive ``http.client`` connection each, reopened whenever the server
closes it) drive one variant at a time for ``--seconds``; the variants alternate their order
round by round and the table shows the median of the rounds (the ratio is the median of
each round's ratio to that round's bare run, so that a noisy neighbour slowing one round
cancels out):

* bare ``SELECT 1``: the floor;
* ``/v1/me`` with an API key and with a login token: the hot path, measured against it;
* ``/healthz``: the API with no database and no authentication (a reference).

Beside requests/s and latency, the table shows the CPU time the gunicorn workers spent per
request: a figure that a busy machine disturbs far less than throughput.

Exits non-zero only on a correctness failure (an answer that is not 200 or not the expected
body, a server that died), never because of a timing.

    uv run python bench/api_hot_path.py [--seconds 5] [--threads 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import psutil
from benchstack import bench_servers
from honcho.environ import parse_procfile
from sqlalchemy import text
from stats import percentile

from neosl import migrate
from neosl.config import load_settings
from neosl.db import short_lived_engine
from neosl_devstack.processes import STOP_GRACE, supervised_argv
from neosl_devstack.servers import free_port

GOAL = 0.6  # /v1/me should reach at least 60 % of the bare route's requests/s
BENCH_DIR = Path(__file__).resolve().parent
PROCFILE = BENCH_DIR.parent / "Procfile"
API_APP = "'neosl_api.app:create_app()'"
BARE_APP = "bare_app:create_app()"
PASSWORD = "bench-password-1"


class BenchError(RuntimeError):
    """A correctness check failed; the figures cannot be trusted."""


@dataclass(frozen=True)
class Measurement:
    latencies: list[float]
    seconds: float
    worker_cpu: float  # seconds of CPU the server's workers used during the run

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def cpu_us(self) -> float:
        return self.worker_cpu / len(self.latencies) * 1e6


class Gunicorn:
    """The Procfile's ``api`` command serving ``app`` on a free port, its log to a file.

    The command comes from the Procfile as it is now (worker class, workers, threads,
    timeouts), so the bench measures what ``make dev`` runs; only the port and, for the bare
    server, the app differ.
    """

    def __init__(self, name: str, app: str, env: Mapping[str, str], folder: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = folder / f"{name}-gunicorn.log"
        self.command = api_command(app)
        with self.log.open("wb") as out:
            # exec: the shell expands the Procfile's ${VAR:-default} and becomes the master.
            # Under a supervisor: the server and its workers end with us, even if we are
            # killed.
            self.process = subprocess.Popen(
                supervised_argv(f"exec {self.command}", STOP_GRACE),
                env={**env, "NSL_API_PORT": str(self.port)},
                cwd=BENCH_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        """Raises:
        BenchError: the server exited or did not answer ``path`` with 200 in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.tail()}")
            try:
                status, _ = request(self.port, "GET", path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer {path} in {timeout:g}s:\n{self.tail()}")

    def worker_cpu(self) -> float:
        """CPU seconds (user + system) the workers have used so far."""
        total = 0.0
        # Below the supervisor: the master, and below it the workers.
        supervisor = psutil.Process(self.process.pid)
        masters = supervisor.children()
        for worker in [w for m in masters for w in m.children()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = worker.cpu_times()
                total += times.user + times.system
        return total

    def check_alive(self) -> None:
        """Raises:
        BenchError: the master exited during the run.
        """
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited during the run:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM; the supervisor kills what is left ``STOP_GRACE`` seconds later."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Variant:
    label: str
    server: Gunicorn
    path: str
    headers: Mapping[str, str]
    expected: bytes  # the exact body every answer must have
    measured: bool  # compared with the goal (the /v1/me rows)


def api_command(app: str) -> str:
    """The Procfile's ``api`` line with ``app`` served (the API's own access lines go to the
    server's log with the rest).

    Raises:
        BenchError: the line no longer has the parts replaced here.
    """
    command: str = dict(parse_procfile(PROCFILE.read_text()).processes)["api"]
    for part in (API_APP, "${NSL_API_PORT"):
        if part not in command:
            raise BenchError(f"the Procfile's api line has no {part!r}: {command!r}")
    return command.replace(API_APP, shlex.quote(app))


def request(
    port: int,
    method: str,
    path: str,
    body: object | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        all_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, payload, all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def drive(variant: Variant, threads: int, seconds: float) -> Measurement:
    """``threads`` clients requesting ``variant`` back to back for ``seconds``.

    Raises:
        BenchError: an answer was not 200 with the expected body, or a client failed.
    """
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []

    def work(latencies: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", variant.server.port, timeout=10)
        try:
            start.wait()
            while not stop.is_set():
                began = time.perf_counter()
                conn.request("GET", variant.path, headers=variant.headers)
                response = conn.getresponse()
                body = response.read()
                latencies.append(time.perf_counter() - began)
                if response.status != 200 or body != variant.expected:
                    failures.append(f"{variant.label}: {response.status} {body[:200]!r}")
                    stop.set()
        except BaseException as exc:  # reported by the main thread below
            failures.append(f"{variant.label}: client failed: {exc!r}")
            stop.set()
        finally:
            conn.close()

    pool = [threading.Thread(target=work, args=(lat,), daemon=True) for lat in per_thread]
    for t in pool:
        t.start()
    cpu_before = variant.server.worker_cpu()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in pool:
        t.join()
    # Requests in flight at the stop finish and are counted, and so is their time.
    elapsed = time.perf_counter() - began
    cpu = variant.server.worker_cpu() - cpu_before
    if failures:
        raise BenchError(failures[0])
    return Measurement([x for lat in per_thread for x in lat], elapsed, cpu)


@contextmanager
def servers(folder: Path) -> Iterator[dict[str, str]]:
    """Start an embedded PostgreSQL and Redis; yield the application's environment."""
    with bench_servers(folder, durable=False) as (_, env):
        yield env


def prepare(env: Mapping[str, str]) -> str:
    """Create the schema; return the server's description."""
    settings = load_settings(env)
    with short_lived_engine(settings) as engine:
        migrate.upgrade(engine, settings.db_dir)
        with engine.connect() as conn:
            server = conn.scalar(text("SHOW server_version"))
    return f"PostgreSQL {server} (embedded), Redis (embedded)"


def tenant_credentials(api: Gunicorn) -> tuple[str, str]:
    """Register a tenant and log in through the API; return (API key, login token).

    Raises:
        BenchError: registration or login did not succeed.
    """
    status, body = request(
        api.port,
        "POST",
        "/v1/auth/register",
        {"username": "bench_tenant", "email": "bench@example.com", "password": PASSWORD},
    )
    if status != 201:
        raise BenchError(f"registration answered {status}: {body[:200]!r}")
    api_key = json.loads(body)["api_key"]
    status, body = request(
        api.port, "POST", "/v1/auth/login", {"username": "bench_tenant", "password": PASSWORD}
    )
    if status != 200:
        raise BenchError(f"login answered {status}: {body[:200]!r}")
    return api_key, json.loads(body)["access_token"]


def expected_body(port: int, path: str, headers: Mapping[str, str], check: str) -> bytes:
    """The body ``path`` answers now, after checking it once in full.

    Raises:
        BenchError: not 200, or the body lacks ``check``.
    """
    status, body = request(port, "GET", path, headers=headers)
    if status != 200 or check not in json.loads(body):
        raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
    return body


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each timed run")
    p.add_argument("--threads", type=int, default=8, help="concurrent clients")
    p.add_argument("--rounds", type=int, default=3, help="timed runs per variant")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed run of each variant first")
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("--threads and --rounds must be >= 1 and --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp:
        folder = Path(tmp)
        try:
            return bench(folder, args)
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1


def bench(folder: Path, args: argparse.Namespace) -> int:
    with servers(folder) as env, ExitStack() as running:
        where = prepare(env)
        bare_path = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        api = Gunicorn("api", "neosl_api.app:create_app()", env, folder)
        running.callback(api.stop)
        bare = Gunicorn("bare", BARE_APP, {**env, "PYTHONPATH": bare_path}, folder)
        running.callback(bare.stop)
        api.wait_ready("/healthz")
        bare.wait_ready("/select1")
        api_key, token = tenant_credentials(api)

        def variant(
            label: str, server: Gunicorn, path: str, check: str, credential: str | None = None
        ) -> Variant:
            headers = {"Authorization": f"Bearer {credential}"} if credential else {}
            body = expected_body(server.port, path, headers, check)
            return Variant(label, server, path, headers, body, credential is not None)

        variants = [
            variant("bare SELECT 1", bare, "/select1", "value"),
            variant("/v1/me, API key", api, "/v1/me", "username", api_key),
            variant("/v1/me, token", api, "/v1/me", "username", token),
            variant("/healthz (no DB)", api, "/healthz", "status"),
        ]

        print(
            f"threads={args.threads} seconds={args.seconds:g} rounds={args.rounds} "
            f"warmup={args.warmup:g}s; gunicorn {version('gunicorn')}; {os.cpu_count()} CPUs"
        )
        print(f"servers:  {api.command}  (NSL_API_WORKERS={env.get('NSL_API_WORKERS', 'unset')})")
        print(f"database: {where}")
        print()
        if args.warmup > 0:
            for v in variants:
                drive(v, args.threads, args.warmup)
        results: dict[str, list[Measurement]] = {v.label: [] for v in variants}
        for r in range(args.rounds):
            # Alternate the order so that a steady drift does not favour any variant.
            order = variants if r % 2 == 0 else list(reversed(variants))
            for v in order:
                results[v.label].append(drive(v, args.threads, args.seconds))
            api.check_alive()
            bare.check_alive()
            line = ", ".join(f"{v.label} {results[v.label][-1].rate:,.0f}" for v in variants)
            print(f"  round {r + 1}: {line} req/s")

    print()
    floor = results[variants[0].label]
    print(
        f"{'variant':<20}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>12}{'ratio':>8}"
        "   goal >= 60 %"
    )
    for v in variants:
        rounds = results[v.label]
        rate = statistics.median(m.rate for m in rounds)
        p50 = statistics.median(m.p50_ms for m in rounds)
        p99 = statistics.median(m.p99_ms for m in rounds)
        cpu = statistics.median(m.cpu_us for m in rounds)
        ratio = statistics.median(m.rate / f.rate for m, f in zip(rounds, floor, strict=True))
        verdict = ("met" if ratio >= GOAL else "NOT met") if v.measured else ""
        print(
            f"{v.label:<20}{rate:>8,.0f}{p50:>8.2f}{p99:>8.2f}{cpu:>12,.0f}{ratio * 100:>6.0f} %"
            f"   {verdict}"
        )
    print(
        "(medians of the rounds; ratio = req/s / the same round's bare SELECT 1 req/s;"
        " CPU = gunicorn workers' CPU time per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
