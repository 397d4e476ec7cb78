"""Executions end to end (API → Redis → executor → PostgreSQL), each next to a baseline.

Three figures, each measured side by side with its baseline in the same run:

1. Throughput: ``POST /v1/functions/{id}/invoke`` of a trivial function from ``--clients``
   threads, timed until every execution has a terminal status in the database, next to
   no-op Celery tasks on a worker started the same way (``neosl.worker_main``, the
   executor's Procfile arguments, ``make_celery`` and ``ServiceTask``) on a queue of its
   own, timed until every result is stored. A third row, "executor only", publishes the
   jobs of rows written beforehand, exactly as the no-op tasks are published: the
   executor's share without the API's. Rounds alternate the order; the table shows
   medians, and a second table the CPU each part of the system spent per operation.
2. Latency at low load: one client, sequential ``invoke?wait=5`` (p50, p99) next to
   ``GET /v1/me`` on the same server and a no-op Celery round trip, interleaved.
3. Waiting on fetch: ``--fetches`` executions that each fetch a local endpoint answering
   after ``--fetch-delay`` seconds, on one executor process: wall time until all finished,
   next to the ideal (one delay), and the most requests the endpoint held at once.
4. The cost of holding: a second API and executor, started the same way on the same servers
   (their own Redis database) but with a price, so that each invoke holds the most its
   execution can cost and the executor settles the hold to what ran. Throughput, CPU per
   execution and ``invoke?wait`` latency of the free pair next to the priced one, rounds
   alternating. Goal: the priced pair at most 10 % slower. Afterwards every priced
   execution must be charged and the ledger's check clean.

Everything runs as in production, on this machine: embedded PostgreSQL and Redis (no
Docker; ``DATABASE_URL``/``REDIS_URL`` are ignored), the API served by gunicorn with the
Procfile's ``api`` line, the executor started with the Procfile's ``executor`` line. No Neo
node is needed. Executions cost nothing (the default price is 0), but in figure 4's priced
pair. Everything started is stopped at the end, on Ctrl-C too.

Exits non-zero only on a correctness failure (a refused request, an execution that did
not succeed with its input as result, a lost no-op task, a run that never finished, a
function counter that does not match its executions, a replaced sandbox process or an
error in the executor's log), never because of a timing.

    uv run python bench/executions.py [--executions 500] [--rounds 3] [--figures 1,2,3,4]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import json
import os
import secrets
import shlex
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
from bare_app import BARE_QUEUE, BARE_TABLE_DDL
from benchstack import bench_servers
from celery import Celery
from honcho.environ import parse_procfile
from neo3.wallet.account import Account
from redis import Redis
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session
from stats import percentile

from neosl import jobs, migrate
from neosl.celery_app import make_celery
from neosl.config import Settings, load_settings
from neosl.db import make_engine
from neosl.gas import ledger
from neosl.models import Execution
from neosl.models.functions import TERMINAL_STATUSES
from neosl.tasks import ServiceTask
from neosl.worker_main import run_worker
from neosl_api.messages import sign_message
from neosl_devstack.processes import STOP_GRACE, supervised_argv
from neosl_devstack.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
API_APP = "'neosl_api.app:create_app()'"
BARE_APP = "bare_app:create_app()"
PROCFILE = ROOT / "Procfile"
TRIVIAL = "function main(i) { return i }"
FETCHING = """async function main(url) {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}"""
FETCH_BODY = "ok"
NOOP_QUEUE = "bench-noop"
NOOP_TASK = "bench.noop"
GOAL_RATIO = 0.5
# Invokes accepted per second, and the API's CPU per invoke, next to bare_app's POST /accept.
GOAL_ACCEPT_RATIO = 0.7
GOAL_CPU_RATIO = 2.0
GOAL_P50_MS = 10.0
GOAL_P99_MS = 30.0
GOAL_FETCH_SECONDS = 3.0
# Figure 4: the priced pair at most this much slower than the free one.
HOLD_GOAL = 0.10
POLL_SECONDS = 0.02


class BenchError(RuntimeError):
    """A correctness check failed; the figures cannot be trusted."""


# -- the no-op worker (this script, run as `executions.py noop-worker ...`) ----------------


def noop_worker_app(settings: Settings) -> Celery:
    """The executor's app minus its tasks: the same factory, settings and base task (only
    the health-check task is left out: ``make_worker_app`` knows our queues only)."""
    app = make_celery(settings, "bench_noop", queue=NOOP_QUEUE)

    @app.task(name=NOOP_TASK, base=ServiceTask, bind=True, shared=False)
    def noop(self: ServiceTask, value: int) -> int:
        return value

    return app


# -- processes -----------------------------------------------------------------------------


class Process:
    """A child started in a session of its own (so Ctrl-C reaches only us, and stopping it
    stops its children too), its output in a log file."""

    def __init__(self, name: str, command: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.command = command
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        # Under a supervisor: the process and all it starts end with us, even if we are
        # killed.
        self.process = subprocess.Popen(
            supervised_argv(f"exec {command}", STOP_GRACE),
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        """Raises:
        BenchError: the process exited.
        """
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 20) -> str:
        text_ = self.log_path.read_text(errors="replace")
        return "\n".join(text_.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM; the supervisor kills what is left ``STOP_GRACE`` seconds later."""
        if self.process.poll() is None:
            # A paused process (``pause``) acts on SIGTERM only once it runs again.
            self._signal_tree(signal.SIGCONT)
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE + 5)
            except subprocess.TimeoutExpired:
                self._signal_tree(signal.SIGKILL)
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()

    def pause(self) -> None:
        """Stop the process and its children (they keep their connections)."""
        self._signal_tree(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def _signal_tree(self, sig: signal.Signals) -> None:
        # Everything below the supervisor (which passes on only SIGTERM).
        for process in tree(self.process.pid, itself=False):
            with suppress(psutil.Error):
                process.send_signal(sig)


def wait_until(what: str, ready: Callable[[], bool], proc: Process, timeout: float = 90) -> None:
    """Raises:
    BenchError: ``proc`` exited, or ``ready`` was not true within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        with suppress(Exception):  # not up yet
            if ready():
                return
        time.sleep(0.1)
    raise BenchError(f"{what} not ready within {timeout:.0f} s:\n{proc.tail()}")


# CPU seconds by part of the system.
Cpu = dict[str, float]


class CpuMeter:
    """CPU seconds (user + system) used by each part of the system between two snapshots.

    A part is a set of process trees; a process that starts in between counts from zero.
    A process's time includes that of its children that ended and were reaped: PostgreSQL's
    backends for connections closed in between count (the postmaster reaps them), and a
    connection pool that closes and reopens connections is not flattered.
    """

    def __init__(self, parts: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self._parts = parts

    def snapshot(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, processes in self._parts.items():
            seen: dict[int, float] = {}
            for proc in processes():
                with suppress(psutil.Error):
                    t = proc.cpu_times()
                    seen[proc.pid] = t.user + t.system + t.children_user + t.children_system
            out[name] = seen
        return out

    @staticmethod
    def used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> Cpu:
        return {
            name: sum(t - before[name].get(pid, 0.0) for pid, t in pids.items())
            for name, pids in after.items()
        }


def tree(pid: int, *, children: bool = True, itself: bool = True) -> list[psutil.Process]:
    """The process ``pid`` and/or its descendants, as they are now."""
    try:
        root = psutil.Process(pid)
        found = [root] if itself else []
        return found + (root.children(recursive=True) if children else [])
    except psutil.Error:
        return []


# -- the system under test -----------------------------------------------------------------


@dataclass
class System:
    settings: Settings
    engine: Engine
    redis: Redis
    producer: Celery
    api_url: str
    api: Process
    executor: Process
    noop: Process
    # Figure 1's floor for accepting: bench/bare_app.py's POST /accept, same gunicorn line.
    bare_url: str
    bare: Process
    headers: dict[str, str]
    user_id: int
    describe: str
    cpu: CpuMeter
    # Figure 4's priced API and executor (same servers, their own Redis database).
    priced: System | None = None


def procfile_commands() -> dict[str, str]:
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def bare_command(api_command: str) -> str:
    """The Procfile's ``api`` line serving ``bench/bare_app.py`` instead of the API.

    Raises:
        BenchError: the line no longer names the API's app.
    """
    if API_APP not in api_command:
        raise BenchError(f"the Procfile's api line has no {API_APP!r}: {api_command!r}")
    return api_command.replace(API_APP, shlex.quote(BARE_APP))


@contextmanager
def system(
    args: argparse.Namespace, root: Path, fetch_host: str, *, priced: bool = False
) -> Iterator[System]:
    """Start PostgreSQL, Redis, the API (gunicorn), the executor and the no-op worker (and,
    with ``priced``, figure 4's priced API and executor)."""
    # The embedded PostgreSQL runs as an unprivileged user when we are root: it must be able
    # to reach its folder.
    with ExitStack() as stack:
        # Nothing here talks to a chain.
        servers, env = stack.enter_context(bench_servers(root, durable=args.durable))
        api_port = free_port()
        env.update(NSL_API_PORT=str(api_port), NSL_FETCH_ALLOW=fetch_host)
        settings = load_settings(env)
        engine = make_engine(settings, pool_size=2)
        stack.callback(engine.dispose)
        migrate.upgrade(engine, settings.db_dir)
        with engine.begin() as conn:
            conn.execute(text(BARE_TABLE_DDL))
        redis = Redis.from_url(settings.redis_url)
        stack.callback(redis.close)
        producer = make_celery(settings, "bench")

        commands = procfile_commands()
        executor_cmd = commands["executor"]
        prefix = "python -m neosl_executor"
        if not executor_cmd.startswith(prefix):
            raise BenchError(f"the Procfile's executor line changed shape: {executor_cmd!r}")
        # The same start-up and arguments, another app: this script's no-op worker.
        script = shlex.quote(str(Path(__file__).resolve()))
        noop_cmd = f"python {script} noop-worker" + executor_cmd[len(prefix) :]
        logs = root / "logs"
        logs.mkdir()
        api = Process("api", commands["api"], env, logs)
        stack.callback(api.stop)
        executor = Process("executor", executor_cmd, env, logs)
        stack.callback(executor.stop)
        noop = Process("noop-worker", noop_cmd, env, logs)
        stack.callback(noop.stop)
        bare_port = free_port()
        bare_env = {
            **env,
            "NSL_API_PORT": str(bare_port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")])),
        }
        bare = Process("bare", bare_command(commands["api"]), bare_env, logs)
        stack.callback(bare.stop)

        api_url = f"http://127.0.0.1:{api_port}"
        wait_until("the API", lambda: httpx.get(f"{api_url}/readyz").status_code == 200, api)
        ping = jobs.PING_JOBS[jobs.EXECUTOR_QUEUE]
        wait_until(
            "the executor",
            lambda: bool(producer.send_task(ping.name, queue=ping.queue).get(timeout=30)),
            executor,
        )
        # As in production, traffic starts once the executor has prestarted its sandboxes.
        wait_until(
            f"{settings.sandbox_warm} sandbox processes",
            lambda: len(tree(executor.pid, itself=False)) >= settings.sandbox_warm,
            executor,
        )
        wait_until(
            "the no-op worker",
            lambda: producer.send_task(NOOP_TASK, args=[1], queue=NOOP_QUEUE).get(timeout=30) == 1,
            noop,
        )
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_until(
            "the bare server", lambda: httpx.get(f"{bare_url}/select1").status_code == 200, bare
        )
        headers, user_id = register(api_url)
        with engine.connect() as conn:
            facts = conn.execute(
                text(
                    "SELECT current_setting('server_version'), current_setting('fsync'),"
                    " current_setting('synchronous_commit')"
                )
            ).one()
        describe = "\n".join(
            [
                f"PostgreSQL {facts[0]} (fsync={facts[1]}, synchronous_commit={facts[2]}), "
                f"Redis (appendonly={'yes' if args.durable else 'no'}); "
                f"{os.cpu_count()} CPUs",
                f"api:      {commands['api']}  (NSL_API_WORKERS="
                f"{env.get('NSL_API_WORKERS', 'unset')})",
                f"executor: {executor_cmd}  (NSL_EXECUTOR_CONCURRENCY="
                f"{env.get('NSL_EXECUTOR_CONCURRENCY', 'unset')}, "
                f"NSL_SANDBOX_PROCESSES={settings.sandbox_processes}, "
                f"NSL_SANDBOX_WARM={settings.sandbox_warm})",
                f"no-op:    {noop_cmd}",
                f"bare:     {bare.command}",
            ]
        )
        assert servers.postgres is not None
        assert servers.redis is not None
        pg, rd = servers.postgres.process, servers.redis.process
        assert pg is not None
        assert rd is not None

        def meter(api: Process, workers: Sequence[Process], executor: Process) -> CpuMeter:
            return CpuMeter(
                {
                    "bench": lambda: tree(os.getpid(), children=False),
                    # One of the two serves at a time; the other idles.
                    "API": lambda: tree(api.pid) + tree(bare.pid),
                    "worker": lambda: [p for w in workers for p in tree(w.pid, children=False)],
                    "sandboxes": lambda: tree(executor.pid, itself=False),
                    "PostgreSQL": lambda: tree(pg.pid),
                    "Redis": lambda: tree(rd.pid),
                }
            )

        free = System(
            settings,
            engine,
            redis,
            producer,
            api_url,
            api,
            executor,
            noop,
            bare_url,
            bare,
            headers,
            user_id,
            describe,
            meter(api, [executor, noop], executor),
        )
        if priced:
            free.priced = start_priced(stack, free, env, commands, logs, meter)
        yield free


# Figure 4's prices: each invoke holds a run until the timeout (30 s: 0.031 GAS), settled to
# what ran (0.0011 GAS for a trivial function).
PRICES = {"NSL_FUNCTION_BASE_FEE": "0.001", "NSL_FUNCTION_FEE_PER_100MS": "0.0001"}
# What the priced tenant deposits: far more than every hold a run can have pending at once.
PRICED_FUNDS = Decimal(100_000)


def start_priced(
    stack: ExitStack,
    free: System,
    env: dict[str, str],
    commands: dict[str, str],
    logs: Path,
    meter: Callable[[Process, Sequence[Process], Process], CpuMeter],
) -> System:
    """The priced API and executor of figure 4, beside the free ones, and a funded tenant.

    Raises:
        BenchError: a process did not start, or the tenant could not be set up.
    """
    port = free_port()
    redis_url = free.settings.redis_url.rsplit("/", 1)[0] + "/1"
    penv = {**env, **PRICES, "NSL_API_PORT": str(port), "REDIS_URL": redis_url}
    settings = load_settings(penv)
    producer = make_celery(settings, "bench-priced")
    api = Process("priced-api", commands["api"], penv, logs)
    stack.callback(api.stop)
    executor = Process("priced-executor", commands["executor"], penv, logs)
    stack.callback(executor.stop)
    api_url = f"http://127.0.0.1:{port}"
    wait_until("the priced API", lambda: httpx.get(f"{api_url}/readyz").status_code == 200, api)
    ping = jobs.PING_JOBS[jobs.EXECUTOR_QUEUE]
    wait_until(
        "the priced executor",
        lambda: bool(producer.send_task(ping.name, queue=ping.queue).get(timeout=30)),
        executor,
    )
    wait_until(
        "the priced executor's sandboxes",
        lambda: len(tree(executor.pid, itself=False)) >= settings.sandbox_warm,
        executor,
    )
    headers, user_id = register(api_url)
    fund(free.engine, api_url, headers, PRICED_FUNDS)
    return dataclasses.replace(
        free,
        settings=settings,
        producer=producer,
        api_url=api_url,
        api=api,
        executor=executor,
        headers=headers,
        user_id=user_id,
        cpu=meter(api, [executor], executor),
    )


def register(api_url: str) -> tuple[dict[str, str], int]:
    """A new tenant: (its headers, its user id).

    Raises:
        BenchError: registering failed.
    """
    name = f"bench{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        f"{api_url}/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": uuid.uuid4().hex},
        timeout=30,
    )
    if reply.status_code != 201:
        raise BenchError(f"register answered {reply.status_code}: {reply.text}")
    return {"Authorization": f"Bearer {reply.json()['api_key']}"}, reply.json()["user"]["id"]


def fund(engine: Engine, api_url: str, headers: dict[str, str], amount: Decimal) -> None:
    """Give the tenant a default gas account (proved through the API, as a wallet would)
    and credit it a deposit of ``amount``, as the chain follower would.

    Raises:
        BenchError: the API refused the proof.
    """
    wif = Account.private_key_to_wif(secrets.token_bytes(32))
    address = sign_message(wif, "", None).address
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        reply = client.get("/v1/gas/accounts/challenge", params={"address": address})
        if reply.status_code != 200:
            raise BenchError(f"the challenge answered {reply.status_code}: {reply.text}")
        proof = sign_message(wif, reply.json()["message"], None).as_dict()
        reply = client.post("/v1/gas/accounts", json=proof)
        if reply.status_code != 201:
            raise BenchError(f"proving an address answered {reply.status_code}: {reply.text}")
    with Session(engine) as session:
        ledger.credit_deposit(
            session,
            tx_hash="0x" + secrets.token_hex(32),
            notification_index=0,
            block_index=0,
            from_address=address,
            amount=amount,
        )
        session.commit()


def create_function(sys_: System, source: str) -> int:
    """Raises:
    BenchError: the API refused the function.
    """
    body = {"name": f"fn{uuid.uuid4().hex[:8]}", "source_code": source}
    reply = httpx.post(f"{sys_.api_url}/v1/functions", json=body, headers=sys_.headers, timeout=30)
    if reply.status_code != 201:
        raise BenchError(f"creating a function answered {reply.status_code}: {reply.text}")
    function_id: int = reply.json()["id"]
    return function_id


# -- figure 1: throughput ------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    n: int
    seconds: float  # first request sent → last one finished
    sent_seconds: float  # first request sent → last one accepted (API answered / published)

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def in_threads(n: int, threads: int, work: Callable[[int], None]) -> float:
    """Call ``work(i)`` for i in range(n) from ``threads`` threads; the seconds it took.

    Raises:
        BenchError: a call raised (the first error is chained).
    """
    errors: list[BaseException] = []
    counter = iter(range(n))
    lock = threading.Lock()

    def loop() -> None:
        while not errors:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                work(i)
            except BaseException as exc:
                errors.append(exc)

    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise BenchError(str(errors[0])) from errors[0]
    return time.perf_counter() - began


def post_all(
    url: str, headers: dict[str, str], bodies: Sequence[Any], clients: int, what: str
) -> tuple[list[Any], float, float]:
    """POST each body (as JSON) to ``url`` from ``clients`` threads, one keep-alive
    connection each; (the answers' JSON in the bodies' order, perf_counter at start, seconds).

    Raises:
        BenchError: a request failed or was not accepted with 202.
    """
    local = threading.local()
    opened: list[httpx.Client] = []
    answers: list[Any] = [None] * len(bodies)

    def work(i: int) -> None:
        client: httpx.Client | None = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(headers=headers, timeout=60)
            opened.append(client)
        reply = client.post(url, json=bodies[i])
        if reply.status_code != 202:
            raise BenchError(f"{what} answered {reply.status_code}: {reply.text[:300]}")
        answers[i] = reply.json()

    began = time.perf_counter()
    try:
        seconds = in_threads(len(bodies), clients, work)
    finally:
        for client in opened:
            client.close()
    return answers, began, seconds


def invoke_all(
    sys_: System, function_id: int, inputs: Sequence[Any], clients: int
) -> tuple[dict[int, Any], float, float]:
    """POST one invoke per input; (execution id → input, perf_counter at start, seconds).

    Raises:
        BenchError: a request failed or was not accepted with 202.
    """
    answers, began, seconds = post_all(
        f"{sys_.api_url}/v1/functions/{function_id}/invoke",
        sys_.headers,
        [{"input": value} for value in inputs],
        clients,
        "invoke",
    )
    ids = {answer["execution_id"]: value for answer, value in zip(answers, inputs, strict=True)}
    return ids, began, seconds


def wait_finished(sys_: System, ids: Sequence[int], began: float, timeout: float) -> float:
    """Seconds from ``began`` (perf_counter) until every execution in ``ids`` has a terminal
    status in the database, as seen by polling every POLL_SECONDS.

    Raises:
        BenchError: they did not all finish within ``timeout``.
    """
    query = text("SELECT count(*) FROM executions WHERE id = ANY(:ids) AND status = ANY(:done)")
    deadline = time.perf_counter() + timeout
    params = {"ids": list(ids), "done": list(TERMINAL_STATUSES)}
    with sys_.engine.connect() as conn:
        while True:
            done = conn.execute(query, params).scalar_one()
            conn.rollback()
            now = time.perf_counter()
            if done == len(ids):
                return now - began
            if now > deadline:
                raise BenchError(f"only {done} of {len(ids)} executions finished in {timeout} s")
            sys_.executor.check_alive()
            time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Timings:
    """Where an execution's time went, from its own timestamps (medians, ms)."""

    queued_ms: float  # created (API transaction) → claimed by the executor
    running_ms: float  # claimed → finished (sandbox, plus the claim/finish round trips)


def check_executions(sys_: System, expected: dict[int, Any]) -> Timings:
    """Every execution succeeded once with its expected result.

    Raises:
        BenchError: one did not.
    """
    with sys_.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, status, result, error, created_at, start_time, end_time"
                " FROM executions WHERE id = ANY(:ids)"
            ),
            {"ids": list(expected)},
        ).all()
    if len(rows) != len(expected):
        raise BenchError(f"{len(expected) - len(rows)} executions are missing")
    queued: list[float] = []
    running: list[float] = []
    for id_, status, result, error, created, started, ended in rows:
        if status != "succeeded" or result != expected[id_]:
            raise BenchError(f"execution {id_}: {status}, {result!r} ({error})")
        queued.append((started - created).total_seconds() * 1000)
        running.append((ended - started).total_seconds() * 1000)
    return Timings(statistics.median(queued), statistics.median(running))


def run_executions(
    sys_: System, function_id: int, n: int, clients: int, tag: int, timeout: float
) -> tuple[Throughput, Timings]:
    inputs = [tag * 1_000_000 + i for i in range(n)]
    ids, began, sent = invoke_all(sys_, function_id, inputs, clients)
    seconds = wait_finished(sys_, list(ids), began, timeout)
    return Throughput(n, seconds, sent), check_executions(sys_, ids)


def run_accepts_alone(
    sys_: System, function_id: int, n: int, clients: int, tag: int, timeout: float
) -> Throughput:
    """The API alone: the invokes accepted while the executor (with its sandboxes) is
    stopped (SIGSTOP), so that it takes no CPU from the API; then it is resumed and every
    execution must finish as usual.

    Raises:
        BenchError: as ``invoke_all``; an execution did not finish or succeed.
    """
    inputs = [tag * 1_000_000 + i for i in range(n)]
    sys_.executor.pause()
    try:
        ids, _began, sent = invoke_all(sys_, function_id, inputs, clients)
    finally:
        sys_.executor.resume()
    wait_finished(sys_, list(ids), time.perf_counter(), timeout)
    check_executions(sys_, ids)
    return Throughput(n, sent, sent)


def run_executor_only(
    sys_: System, function_id: int, n: int, clients: int, tag: int, timeout: float
) -> tuple[Throughput, Timings]:
    """The executor's share alone: ``n`` queued rows written in one transaction, then their
    jobs published from ``clients`` threads exactly as the no-op tasks are."""
    inputs = [tag * 1_000_000 + i for i in range(n)]
    with sys_.engine.begin() as conn:
        ids = conn.scalars(
            insert(Execution).returning(Execution.id, sort_by_parameter_order=True),
            [
                {
                    "function_id": function_id,
                    "user_id": sys_.user_id,
                    "version": 1,
                    "timeout": 30,
                    "status": "queued",
                    "input": value,
                }
                for value in inputs
            ],
        ).all()
    job = jobs.RUN_EXECUTION

    def send(i: int) -> None:
        sys_.producer.send_task(job.name, kwargs=job.payload(execution_id=ids[i]), queue=job.queue)

    began = time.perf_counter()
    sent = in_threads(n, clients, send)
    seconds = wait_finished(sys_, ids, began, timeout)
    return Throughput(n, seconds, sent), check_executions(sys_, dict(zip(ids, inputs, strict=True)))


def run_bare(sys_: System, n: int, clients: int, tag: int) -> Throughput:
    """POST ``n`` requests to the bare server's ``/accept`` from ``clients`` threads (one
    keep-alive connection each), as invokes are posted; done when the last one is answered.
    Its jobs are then taken off their queue, which nothing consumes.

    Raises:
        BenchError: a request was not accepted, or a job is missing from the queue.
    """
    bodies = [{"input": tag * 1_000_000 + i} for i in range(n)]
    _answers, _began, sent = post_all(f"{sys_.bare_url}/accept", {}, bodies, clients, "bare route")
    queued = sys_.redis.llen(BARE_QUEUE)
    sys_.redis.delete(BARE_QUEUE)
    if queued != n:
        raise BenchError(f"the bare route published {queued} jobs for {n} requests")
    return Throughput(n, sent, sent)


def run_noops(sys_: System, n: int, clients: int, tag: int, timeout: float) -> Throughput:
    """Send ``n`` no-op tasks from ``clients`` threads; time until every result is stored.

    Raises:
        BenchError: a result is missing after ``timeout``, failed, or is not its input.
    """
    inputs = [tag * 1_000_000 + i for i in range(n)]
    task_ids: list[str] = [""] * n

    def send(i: int) -> None:
        task_ids[i] = sys_.producer.send_task(NOOP_TASK, args=[inputs[i]], queue=NOOP_QUEUE).id

    began = time.perf_counter()
    sent = in_threads(n, clients, send)
    # The Redis result backend's key of each task's result.
    keys = [f"celery-task-meta-{t}" for t in task_ids]
    deadline = time.perf_counter() + timeout
    pending = list(range(n))
    while True:
        values = sys_.redis.mget([keys[i] for i in pending])
        pending = [i for i, v in zip(pending, values, strict=True) if v is None]
        now = time.perf_counter()
        if not pending:
            break
        if now > deadline:
            raise BenchError(f"{len(pending)} of {n} no-op tasks have no result after {timeout} s")
        sys_.noop.check_alive()
        time.sleep(POLL_SECONDS)
    for i, raw in enumerate(sys_.redis.mget(keys)):
        meta = json.loads(raw or "null")
        if meta["status"] != "SUCCESS" or meta["result"] != inputs[i]:
            raise BenchError(f"no-op task {task_ids[i]}: {meta['status']} {meta['result']!r}")
    return Throughput(n, now - began, sent)


def figure_throughput(sys_: System, args: argparse.Namespace) -> None:
    function_id = create_function(sys_, TRIVIAL)
    tag = 1
    if args.warmup:
        # Untimed: opens connections, grows the sandbox pool, fills caches.
        run_executions(sys_, function_id, args.warmup, args.clients, tag, args.timeout)
        run_noops(sys_, args.warmup, args.clients, tag, args.timeout)
    variants: dict[str, Callable[[int], Throughput]] = {
        "no-op Celery task": lambda t: run_noops(
            sys_, args.executions, args.clients, t, args.timeout
        ),
        "executor only": lambda t: record(
            "executor only",
            run_executor_only(sys_, function_id, args.executions, args.clients, t, args.timeout),
        ),
        "execution via API": lambda t: record(
            "execution via API",
            run_executions(sys_, function_id, args.executions, args.clients, t, args.timeout),
        ),
        "invokes, executor off": lambda t: run_accepts_alone(
            sys_, function_id, args.executions, args.clients, t, args.timeout
        ),
        "bare INSERT + publish": lambda t: run_bare(sys_, args.executions, args.clients, t),
    }
    timings: dict[str, list[Timings]] = {}

    def record(name: str, measured: tuple[Throughput, Timings]) -> Throughput:
        timings.setdefault(name, []).append(measured[1])
        return measured[0]

    results: dict[str, list[Throughput]] = {name: [] for name in variants}
    cpu: dict[str, list[Cpu]] = {name: [] for name in variants}
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            tag += 1
            before = sys_.cpu.snapshot()
            results[name].append(variants[name](tag))
            cpu[name].append(CpuMeter.used(before, sys_.cpu.snapshot()))
        line = ", ".join(f"{n} {results[n][-1].rate:,.0f}/s" for n in variants)
        print(f"  round {r + 1}: {line}", flush=True)
    noop_rate = statistics.median(m.rate for m in results["no-op Celery task"])
    print()
    print(
        f"{'run':<22}{'n':>6}{'seconds':>9}{'done/s':>9}{'accepted/s':>12}"
        f"{'x no-op':>9}   goal >= {GOAL_RATIO:.0%}"
    )
    for name, rounds in results.items():
        rate = statistics.median(m.rate for m in rounds)
        seconds = statistics.median(m.seconds for m in rounds)
        accepted = statistics.median(m.n / m.sent_seconds for m in rounds)
        ratio = rate / noop_rate
        verdict = (
            "" if name != "execution via API" else ("met" if ratio >= GOAL_RATIO else "NOT met")
        )
        accepting = name in ("bare INSERT + publish", "invokes, executor off")
        shown = f"{'':>9}" if accepting else f"{ratio * 100:>7.0f} %"
        print(
            f"{name:<22}{args.executions:>6}{seconds:>9.2f}{rate:>9,.0f}{accepted:>12,.0f}"
            f"{shown}   {verdict}"
        )
    print(
        "(medians of the rounds; done/s: first request sent to last one finished; "
        "accepted/s: API answers 202 / tasks published; the bare route's jobs are not run;"
        " executor off: stopped while the invokes are accepted, resumed after)"
    )
    accepts = {
        name: statistics.median(m.n / m.sent_seconds for m in results[name])
        for name in ("execution via API", "invokes, executor off", "bare INSERT + publish")
    }
    api_cpu = {
        name: statistics.median(c["API"] for c in cpu[name]) * 1000 / args.executions
        for name in ("execution via API", "invokes, executor off", "bare INSERT + publish")
    }
    bare_accepts, bare_cpu = accepts["bare INSERT + publish"], api_cpu["bare INSERT + publish"]
    for name in ("invokes, executor off", "execution via API"):
        accept_ratio = accepts[name] / bare_accepts
        cpu_ratio = api_cpu[name] / bare_cpu
        print(
            f"{name}: accepted/s {accepts[name]:,.0f} = {accept_ratio:.0%} of the bare route's "
            f"{bare_accepts:,.0f} (goal >= {GOAL_ACCEPT_RATIO:.0%}: "
            f"{'met' if accept_ratio >= GOAL_ACCEPT_RATIO else 'NOT met'}); API CPU per invoke "
            f"{api_cpu[name]:.2f} ms = {cpu_ratio:.2f} x the bare route's {bare_cpu:.2f} ms "
            f"(goal <= {GOAL_CPU_RATIO:g} x: {'met' if cpu_ratio <= GOAL_CPU_RATIO else 'NOT met'})"
        )
    print()
    parts = list(next(iter(cpu.values()))[0])
    print(f"{'CPU ms per operation':<22}" + "".join(f"{p:>11}" for p in parts) + f"{'total':>8}")
    for name, rounds_cpu in cpu.items():
        per_op = {
            p: statistics.median(c[p] for c in rounds_cpu) * 1000 / args.executions for p in parts
        }
        print(
            f"{name:<22}"
            + "".join(f"{per_op[p]:>11.2f}" for p in parts)
            + f"{sum(per_op.values()):>8.2f}"
        )
    print(
        f"(user + system CPU of each part's processes over a round, / n; {os.cpu_count()} CPUs: "
        "a total of T ms per operation caps the rate near CPUs x 1000 / T)"
    )
    print("an execution's own timestamps (median of the rounds' medians):")
    for name, rounds_ in timings.items():
        print(
            f"  {name}: queued→claimed {statistics.median(t.queued_ms for t in rounds_):.1f} ms,"
            f" claimed→finished {statistics.median(t.running_ms for t in rounds_):.1f} ms"
        )


# -- figure 2: latency ---------------------------------------------------------------------


def figure_latency(sys_: System, args: argparse.Namespace) -> None:
    function_id = create_function(sys_, TRIVIAL)
    client = httpx.Client(base_url=sys_.api_url, headers=sys_.headers, timeout=30)
    counter = iter(range(10**9))

    # (sent, answered) wall-clock times per execution, for the phase table.
    waited: dict[int, tuple[float, float]] = {}

    wait_invoke = wait_invoker(client, function_id, counter, waited)

    def me() -> None:
        reply = client.get("/v1/me")
        if reply.status_code != 200:
            raise BenchError(f"/v1/me answered {reply.status_code}: {reply.text[:300]}")

    def noop() -> None:
        value = next(counter)
        result = sys_.producer.send_task(NOOP_TASK, args=[value], queue=NOOP_QUEUE)
        if result.get(timeout=10) != value:
            raise BenchError("a no-op round trip returned something else")

    variants = {
        "GET /v1/me": me,
        "no-op Celery round trip": noop,
        "invoke?wait=5": wait_invoke,
    }
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    try:
        for call in variants.values():
            for _ in range(args.warmup_requests):
                call()
        for i in range(args.requests):
            # Interleaved, rotating who goes first: drift hits all three alike.
            for name in names[i % 3 :] + names[: i % 3]:
                started = time.perf_counter()
                variants[name]()
                latencies[name].append((time.perf_counter() - started) * 1000)
                time.sleep(args.pause)
    finally:
        client.close()
    print(f"{'request':<26}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}   goal")
    for name, values in latencies.items():
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        verdict = ""
        if name.startswith("invoke"):
            met = p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS
            verdict = "met" if met else "NOT met"
        print(f"{name:<26}{len(values):>6}{p50:>9.1f}{p99:>9.1f}{max(values):>9.1f}   {verdict}")
    print(
        f"(one client, sequential, {args.pause * 1000:g} ms apart; goal for invoke?wait: "
        f"p50 <= {GOAL_P50_MS:g} ms, p99 <= {GOAL_P99_MS:g} ms)"
    )
    print_wait_phases(sys_, waited)


def print_wait_phases(sys_: System, waited: dict[int, tuple[float, float]]) -> None:
    """Where an ``invoke?wait`` went, from the client's clock and the execution's timestamps.

    ``created_at`` is the start of the API's transaction, ``start_time`` the start of the
    executor's claim and ``end_time`` the moment the sandbox answered; all are read from the
    same machine's clock as the client's.
    """
    with sys_.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, extract(epoch FROM created_at), extract(epoch FROM start_time),"
                " extract(epoch FROM end_time) FROM executions WHERE id = ANY(:ids)"
            ),
            {"ids": list(waited)},
        ).all()
    phases: dict[str, list[float]] = {
        "request -> API transaction": [],
        "API transaction -> claim (commit, broker)": [],
        "claim -> sandbox answered": [],
        "sandbox answered -> reply (finish, wake)": [],
    }
    for id_, created, started, ended in rows:
        sent, answered = waited[id_]
        marks = [sent, float(created), float(started), float(ended), answered]
        for name, a, b in zip(phases, marks, marks[1:], strict=False):
            phases[name].append((b - a) * 1000)
    print(f"{'invoke?wait phase':<44}{'p50 ms':>9}{'p99 ms':>9}")
    for name, values in phases.items():
        print(f"{name:<44}{statistics.median(values):>9.1f}{percentile(values, 0.99):>9.1f}")


# -- figure 3: executions waiting on fetch -------------------------------------------------


class SlowServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Answers every GET after ``delay`` seconds; counts the requests it holds at once."""

    daemon_threads = True
    # The default backlog (5) would drop a burst of connections and make clients retry.
    request_queue_size = 1024

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.served = 0
        super().__init__(("127.0.0.1", 0), _SlowHandler)

    def reset(self) -> None:
        with self.lock:
            self.peak = self.served = 0


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    server: SlowServer

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.active += 1
            server.peak = max(server.peak, server.active)
        try:
            time.sleep(server.delay)
            body = FETCH_BODY.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.active -= 1
                server.served += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


def figure_fetch(sys_: System, server: SlowServer, args: argparse.Namespace) -> None:
    function_id = create_function(sys_, FETCHING)
    base = f"http://127.0.0.1:{server.server_address[1]}/slow"
    expected = {"status": 200, "body": FETCH_BODY}
    rows: list[tuple[float, float, int, int]] = []
    for r in range(args.fetch_rounds):
        server.reset()
        sandboxes = len(tree(sys_.executor.pid, itself=False))
        inputs = [f"{base}?r={r}&i={i}" for i in range(args.fetches)]
        ids, began, sent = invoke_all(sys_, function_id, inputs, args.clients)
        seconds = wait_finished(sys_, list(ids), began, args.timeout)
        check_executions(sys_, dict.fromkeys(ids, expected))
        if server.served != args.fetches:
            raise BenchError(f"the endpoint served {server.served} of {args.fetches} requests")
        rows.append((seconds, sent, server.peak, sandboxes))
        print(f"  round {r + 1}: {seconds:.2f} s, peak {server.peak} in flight", flush=True)
    print()
    print(
        f"{'run':<30}{'seconds':>9}{'ideal':>7}{'accepted':>10}{'in flight':>11}"
        f"{'sandboxes':>11}   goal <= {GOAL_FETCH_SECONDS:g} s"
    )
    for r, (seconds, sent, peak, sandboxes) in enumerate(rows):
        name = f"{args.fetches} x fetch({args.fetch_delay:g} s), round {r + 1}"
        verdict = "met" if seconds <= GOAL_FETCH_SECONDS else "NOT met"
        print(
            f"{name:<30}{seconds:>9.2f}{args.fetch_delay:>7.2f}{sent:>10.2f}{peak:>11}"
            f"{sandboxes:>11}   {verdict}"
        )
    print(
        "(seconds: first invoke sent to last execution finished; accepted: until the API "
        "answered the last invoke; in flight: most requests the endpoint held at once; "
        "sandboxes: sandbox processes the executor had when the round began)"
    )


def final_checks(sys_: System) -> None:
    """Every execution finished exactly once, and the executor never replaced a sandbox
    process or logged an error.

    Raises:
        BenchError: one of these does not hold.
    """
    with sys_.engine.connect() as conn:
        unfinished = conn.execute(
            text("SELECT count(*) FROM executions WHERE status <> ALL(:done)"),
            {"done": list(TERMINAL_STATUSES)},
        ).scalar_one()
        # Each finish adds one to its function's counter, in the same transaction.
        miscounted = conn.execute(
            text(
                "SELECT count(*) FROM functions f WHERE f.execution_count <>"
                " (SELECT count(*) FROM executions e WHERE e.function_id = f.id)"
            )
        ).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM executions")).scalar_one()
    executors = [sys_.executor] + ([sys_.priced.executor] if sys_.priced else [])
    log = "\n".join(e.log_path.read_text(errors="replace") for e in executors)
    replaced = log.count(": replaced")
    errors = sum(
        1
        for line in log.splitlines()
        if line.startswith(("ERROR", "CRITICAL", "Traceback")) or ": ERROR/" in line
    )
    print(
        f"checks: {total} executions, {unfinished} not finished, {miscounted} functions whose "
        f"count differs from their executions, {replaced} sandbox processes replaced, "
        f"{errors} errors in the executor's log"
    )
    if unfinished or miscounted or replaced or errors:
        tails = "\n".join(e.tail() for e in executors)
        raise BenchError(f"a final check failed; the executors' logs end:\n{tails}")


# -- figure 4: the cost of holding ---------------------------------------------------------


def figure_holding(sys_: System, args: argparse.Namespace) -> None:
    """The free pair next to the priced one: throughput, CPU, ``invoke?wait`` latency."""
    priced = sys_.priced
    assert priced is not None
    pairs = {"free (no hold)": sys_, "priced (hold, settle)": priced}
    functions = {name: create_function(pair, TRIVIAL) for name, pair in pairs.items()}
    tag = 100
    for name, pair in pairs.items():
        if args.warmup:
            tag += 1
            run_executions(pair, functions[name], args.warmup, args.clients, tag, args.timeout)
    rates: dict[str, list[Throughput]] = {name: [] for name in pairs}
    cpu: dict[str, list[Cpu]] = {name: [] for name in pairs}
    for r in range(args.rounds):
        for name in list(pairs) if r % 2 == 0 else list(reversed(pairs)):
            tag += 1
            pair = pairs[name]
            before = pair.cpu.snapshot()
            measured, _ = run_executions(
                pair, functions[name], args.executions, args.clients, tag, args.timeout
            )
            rates[name].append(measured)
            cpu[name].append(CpuMeter.used(before, pair.cpu.snapshot()))
        line = ", ".join(f"{n} {rates[n][-1].rate:,.0f}/s" for n in pairs)
        print(f"  round {r + 1}: {line}", flush=True)
    latencies: dict[str, list[float]] = {name: [] for name in pairs}
    waited: dict[str, dict[int, tuple[float, float]]] = {name: {} for name in pairs}
    clients = {
        name: httpx.Client(base_url=pair.api_url, headers=pair.headers, timeout=30)
        for name, pair in pairs.items()
    }
    try:
        calls = {
            name: wait_invoker(
                clients[name], functions[name], iter(range(tag * 10**6, 10**12)), waited[name]
            )
            for name in pairs
        }
        for call in calls.values():
            for _ in range(args.warmup_requests):
                call()
        names = list(pairs)
        for i in range(args.requests):
            for name in names[i % 2 :] + names[: i % 2]:
                started = time.perf_counter()
                calls[name]()
                latencies[name].append((time.perf_counter() - started) * 1000)
                time.sleep(args.pause)
    finally:
        for client in clients.values():
            client.close()

    figures: dict[str, dict[str, float]] = {}
    for name in pairs:
        per_op = {
            p: statistics.median(c[p] for c in cpu[name]) * 1000 / args.executions
            for p in ("API", "worker", "PostgreSQL")
        }
        figures[name] = {
            "done/s": statistics.median(m.rate for m in rates[name]),
            "accepted/s": statistics.median(m.n / m.sent_seconds for m in rates[name]),
            "API ms": per_op["API"],
            "worker ms": per_op["worker"],
            "PG ms": per_op["PostgreSQL"],
            "wait p50": statistics.median(latencies[name]),
            "wait p99": percentile(latencies[name], 0.99),
        }
    columns = list(next(iter(figures.values())))
    print()
    print(f"{'run':<24}" + "".join(f"{c:>12}" for c in columns))
    for name, row in figures.items():
        print(f"{name:<24}" + "".join(f"{row[c]:>12.1f}" for c in columns))
    free, held = figures["free (no hold)"], figures["priced (hold, settle)"]
    ratios = {c: held[c] / free[c] for c in columns}
    print(f"{'priced / free':<24}" + "".join(f"{ratios[c]:>11.2f}x" for c in columns))
    slower = max(free["done/s"] / held["done/s"], held["wait p50"] / free["wait p50"]) - 1
    verdict = "met" if slower <= HOLD_GOAL else "NOT met"
    print(
        f"(medians of {args.rounds} rounds of {args.executions} executions from {args.clients} "
        f"clients, CPU per execution; {args.requests} sequential invoke?wait=5 each, "
        f"interleaved. Priced at most {HOLD_GOAL:.0%} slower in throughput and p50: "
        f"{max(slower, 0):.1%}, {verdict})"
    )
    for name, pair in pairs.items():
        print(f"\n{name}:")
        print_wait_phases(pair, waited[name])
    check_charged(priced)


def wait_invoker(
    client: httpx.Client,
    function_id: int,
    values: Iterator[int],
    waited: dict[int, tuple[float, float]] | None = None,
) -> Callable[[], None]:
    """One ``invoke?wait=5`` of the trivial function per call, checked; ``waited`` gets each
    execution's (sent, answered) wall-clock times.

    Raises (the call):
        BenchError: the execution did not succeed with its input as result.
    """

    def call() -> None:
        value = next(values)
        sent = time.time()
        reply = client.post(f"/v1/functions/{function_id}/invoke?wait=5", json={"input": value})
        answered = time.time()
        body = reply.json()
        if reply.status_code != 200 or body["status"] != "succeeded" or body["result"] != value:
            raise BenchError(f"invoke?wait answered {reply.status_code}: {reply.text[:300]}")
        if waited is not None:
            waited[body["id"]] = (sent, answered)

    return call


def check_charged(priced: System) -> None:
    """Every execution of the priced tenant was charged once, and the ledger's check holds.

    Raises:
        BenchError: one was not, or the ledger disagrees with itself.
    """
    with Session(priced.engine) as session:
        uncharged = session.execute(
            text(
                "SELECT count(*) FROM executions WHERE user_id = :u"
                " AND charge_status IS DISTINCT FROM 'charged'"
            ),
            {"u": priced.user_id},
        ).scalar_one()
        problems = ledger.verify(session)
    print(f"priced: {uncharged} executions not charged, {len(problems)} ledger problems")
    if uncharged or problems:
        raise BenchError(f"the priced executions' charges: {uncharged} uncharged, {problems[:5]}")


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--executions", type=int, default=500, help="executions (and no-ops) per round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of figure 1")
    p.add_argument("--clients", type=int, default=4, help="client threads sending invokes")
    p.add_argument("--warmup", type=int, default=200, help="untimed executions before figure 1")
    p.add_argument("--requests", type=int, default=300, help="requests of each kind, figure 2")
    p.add_argument("--warmup-requests", type=int, default=20, help="untimed, figure 2")
    p.add_argument("--pause", type=float, default=0.01, help="seconds between requests, fig. 2")
    p.add_argument("--fetches", type=int, default=100, help="executions that fetch, figure 3")
    p.add_argument("--fetch-delay", type=float, default=1.0, help="the endpoint's delay (s)")
    p.add_argument("--fetch-rounds", type=int, default=3, help="rounds of figure 3")
    p.add_argument("--timeout", type=float, default=120.0, help="give up on a run after (s)")
    p.add_argument(
        "--figures", default="1,2,3,4", help="which figures to run, e.g. 2 or 1,4 (default: all)"
    )
    p.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fsync on in PostgreSQL, appendonly in Redis (default: on)",
    )
    args = p.parse_args(argv)
    args.figures = {f.strip() for f in args.figures.split(",") if f.strip()}
    if not args.figures <= {"1", "2", "3", "4"}:
        p.error("--figures takes 1, 2, 3 and 4")
    if min(args.executions, args.rounds, args.clients, args.requests, args.fetches) < 1:
        p.error("--executions, --rounds, --clients, --requests and --fetches must be >= 1")
    if min(args.warmup, args.warmup_requests) < 0 or args.fetch_delay <= 0 or args.pause < 0:
        p.error("warm-ups must be >= 0, --fetch-delay > 0, --pause >= 0")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["noop-worker"]:
        return run_worker(noop_worker_app, NOOP_QUEUE, argv[1:])
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    print(
        f"executions={args.executions} rounds={args.rounds} clients={args.clients} "
        f"warmup={args.warmup} requests={args.requests} fetches={args.fetches} "
        f"fetch-delay={args.fetch_delay:g}s durable={'on' if args.durable else 'off'}"
    )
    server = SlowServer(args.fetch_delay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys_: System | None = None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp,
            system(args, Path(tmp), "127.0.0.1", priced="4" in args.figures) as sys_,
        ):
            print(sys_.describe)
            if "1" in args.figures:
                print("\n== 1. throughput: executions through the API vs no-op Celery tasks")
                figure_throughput(sys_, args)
            if "2" in args.figures:
                print("\n== 2. latency at low load: invoke?wait vs GET /v1/me, no-op round trip")
                figure_latency(sys_, args)
            if "3" in args.figures:
                print(
                    f"\n== 3. {args.fetches} executions waiting on a {args.fetch_delay:g} s "
                    "fetch, one executor process"
                )
                figure_fetch(sys_, server, args)
            if "4" in args.figures:
                print("\n== 4. the cost of holding: a free API and executor next to priced ones")
                figure_holding(sys_, args)
            print()
            final_checks(sys_)
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        server.shutdown()
        server.server_close()
    print(f"\n(whole run: {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
