"""The sandbox through real child processes: programming model, console, limits, hostile code.

Fetch, which needs local HTTP servers, is in tests/functions/test_sandbox_fetch.py. Timeouts
are 1 s to keep the file quick; each hostile case checks the status it must end in, that the
pool serves the next job, and how many sandbox processes had to be replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from neosl.functions.sandbox import (
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MAX_RESULT_BYTES,
    Limits,
    Outcome,
    RunRequest,
    SandboxError,
    SandboxPool,
)

TIMEOUT = 1.0
# The pool answers within the deadline plus this, whatever the code does.
SLACK = 0.25
SHORT = Limits(timeout_seconds=TIMEOUT, memory_mb=64)


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(max_processes=2) as pool:
        pool.warm(1)
        yield pool


def run(pool: SandboxPool, source: str, input: Any = None, **job: Any) -> Outcome:
    job.setdefault("limits", SHORT)
    return pool.run(RunRequest(source, input=input, **job))


def assert_healthy(pool: SandboxPool) -> None:
    outcome = run(pool, "function main(input) { return input * 2 }", 21)
    assert (outcome.status, outcome.result) == ("succeeded", 42), outcome


def timed(pool: SandboxPool, source: str, **job: Any) -> tuple[Outcome, float, int]:
    """The outcome, how long run() took, and how many processes it made the pool replace."""
    restarts = pool.restarts
    started = time.monotonic()
    outcome = run(pool, source, **job)
    return outcome, time.monotonic() - started, pool.restarts - restarts


# -- programming model


def test_sync_main_gets_input_and_ctx(pool: SandboxPool) -> None:
    ctx = {"executionId": 7, "functionId": 3, "version": 2, "trigger": {"type": "cron"}}
    outcome = run(
        pool,
        "function main(input, ctx) { return {sum: input.a + input.b, ctx} }",
        {"a": 1, "b": 2},
        ctx=ctx,
    )
    assert outcome.status == "succeeded", outcome
    assert outcome.result == {"sum": 3, "ctx": ctx}
    assert outcome.error is None
    assert outcome.fetches == 0


def test_async_main_and_other_definitions(pool: SandboxPool) -> None:
    sources = [
        "async function main(input) { await null; return input + 1 }",
        "const main = async (input) => (await Promise.resolve(input)) + 1",
        "let main = (input) => new Promise((resolve) => resolve(input + 1))",
        "var main = function (input) { return input + 1 }",
    ]
    for source in sources:
        outcome = run(pool, source, 41)
        assert (outcome.status, outcome.result) == ("succeeded", 42), (source, outcome)


def test_nothing_returned_is_null(pool: SandboxPool) -> None:
    outcome = run(pool, "function main() {}")
    assert (outcome.status, outcome.result) == ("succeeded", None)


def test_result_must_be_json(pool: SandboxPool) -> None:
    cases = {
        "return () => 1": "not JSON-serialisable (function)",
        "return 10n": "BigInt",
        "const a = {}; a.self = a; return a": "circular",
    }
    for body, why in cases.items():
        outcome = run(pool, f"function main() {{ {body} }}")
        assert outcome.status == "failed", (body, outcome)
        assert "not JSON-serialisable" in (outcome.error or ""), outcome
        assert why in (outcome.error or ""), outcome


def test_result_size_limit(pool: SandboxPool) -> None:
    # JSON of a string: its characters and two quotes.
    fits = run(pool, f"function main() {{ return 'x'.repeat({MAX_RESULT_BYTES - 2}) }}")
    assert fits.status == "succeeded"
    assert fits.result == "x" * (MAX_RESULT_BYTES - 2)
    over = run(pool, f"function main() {{ return 'x'.repeat({MAX_RESULT_BYTES - 1}) }}")
    assert over.status == "failed"
    assert "too large" in (over.error or "")
    # Multi-byte characters count as their UTF-8 bytes.
    euros = run(pool, f"function main() {{ return '€'.repeat({MAX_RESULT_BYTES // 3}) }}")
    assert euros.status == "failed"
    assert "too large" in (euros.error or "")


def test_thrown_error_has_message_and_stack(pool: SandboxPool) -> None:
    source = "function helper() {\n  throw new TypeError('boom')\n}\nfunction main() { helper() }"
    outcome = run(pool, source)
    assert outcome.status == "failed"
    error = outcome.error or ""
    assert error.startswith("TypeError: boom\n"), error
    assert "at helper (<input>:2:" in error
    assert "at main (<input>:4:" in error
    # The host API's own frames are not the function's business.
    assert "$sandbox" not in error


def test_async_rejection_and_thrown_values(pool: SandboxPool) -> None:
    rejected = run(pool, "async function main() { await null; throw new RangeError('late') }")
    assert rejected.status == "failed"
    assert (rejected.error or "").startswith("RangeError: late\n    at main")
    for thrown, shown in (("'plain'", "Uncaught plain"), ("{a: 1}", 'Uncaught {"a":1}')):
        outcome = run(pool, f"function main() {{ throw {thrown} }}")
        assert (outcome.status, outcome.error) == ("failed", shown)
    top_level = run(pool, "throw new Error('at load')\nfunction main() {}")
    assert (top_level.error or "").startswith("Error: at load")


def test_missing_main(pool: SandboxPool) -> None:
    for source in ("const x = 1", "var main = 5", "const main = {}"):
        outcome = run(pool, source)
        assert outcome.status == "failed"
        assert outcome.error == "the source does not define a function main(input, ctx)"


def test_large_source_and_input(pool: SandboxPool) -> None:
    comment = "// " + "x" * (1 << 20) + "\n"
    outcome = run(pool, comment + "function main(input) { return input.length }", "y" * (1 << 20))
    assert (outcome.status, outcome.result) == ("succeeded", 1 << 20)
    assert pool.compile(comment + "function main() {}") is None
    restarts = pool.restarts
    oversized = run(pool, "function main() {}", "z" * (70 << 20))
    assert oversized.status == "failed"
    assert "exceed" in (oversized.error or "")
    assert pool.restarts == restarts


# -- console


def test_console_levels_and_formatting(pool: SandboxPool) -> None:
    source = """
    function main() {
      console.log('plain', 1, true, null, undefined);
      console.info({a: [1, 'x']}, [1n]);
      console.warn(new Error('bad'));
      console.error(function named() {}, Symbol('s'));
      console.debug('last');
      const circular = {}; circular.self = circular;
      console.log(circular);
    }
    """
    outcome = run(pool, source)
    assert outcome.status == "succeeded", outcome
    lines = [(line.level, line.message) for line in outcome.logs]
    assert lines[0] == ("log", "plain 1 true null undefined")
    assert lines[1] == ("info", '{"a":[1,"x"]} ["1n"]')
    assert lines[2][0] == "warn"
    assert lines[2][1].startswith("Error: bad\n    at main (<input>:")
    assert lines[3] == ("error", "[Function: named] Symbol(s)")
    assert lines[4] == ("debug", "last")
    assert lines[5] == ("log", "[object Object]")
    stamps = [line.timestamp for line in outcome.logs]
    assert stamps == sorted(stamps)
    assert all(s.tzinfo is not None for s in stamps)


def test_console_keeps_1000_lines_then_one_truncated_line(pool: SandboxPool) -> None:
    outcome = run(pool, "function main() { for (let i = 0; i < 5000; i++) console.log('line', i) }")
    assert outcome.status == "succeeded"
    assert len(outcome.logs) == MAX_LOG_LINES + 1
    assert outcome.logs[MAX_LOG_LINES - 1].message == f"line {MAX_LOG_LINES - 1}"
    assert "truncated" in outcome.logs[-1].message


def test_console_keeps_1_mb_then_one_truncated_line(pool: SandboxPool) -> None:
    # 300 lines of 10 kB of "é" (2 bytes each in UTF-8): 6 MB asked for.
    outcome = run(
        pool, "function main() { for (let i = 0; i < 300; i++) console.log('é'.repeat(10000)) }"
    )
    assert outcome.status == "succeeded"
    kept = outcome.logs[:-1]
    assert sum(len(line.message.encode()) for line in kept) == MAX_LOG_BYTES
    assert len(kept) == MAX_LOG_BYTES // 20000 + 1
    assert "truncated" in outcome.logs[-1].message
    assert "truncated" not in kept[-1].message


def test_logs_of_a_failed_run_are_kept(pool: SandboxPool) -> None:
    outcome = run(pool, "function main() { console.log('before'); throw new Error('x') }")
    assert outcome.status == "failed"
    assert [line.message for line in outcome.logs] == ["before"]


def test_secrets_are_redacted_from_logs_and_errors(pool: SandboxPool) -> None:
    secrets = {"SHORT": "hunter2", "LONG": "hunter2-and-more", "EMPTY": ""}
    source = """
    function main(input, ctx) {
      console.log('key=' + ctx.secrets.LONG + ' short=' + ctx.secrets.SHORT);
      throw new Error('leaked ' + ctx.secrets.SHORT);
    }
    """
    outcome = run(pool, source, ctx={"secrets": secrets})
    assert outcome.status == "failed"
    assert [line.message for line in outcome.logs] == ["key=*** short=***"]
    assert (outcome.error or "").startswith("Error: leaked ***\n")
    assert "hunter2" not in repr(outcome)


# -- what the sandbox offers and what it does not


def test_only_console_and_fetch_are_offered(pool: SandboxPool) -> None:
    source = """
    async function main() {
      const seen = {};
      for (const name of ['require', 'process', 'std', 'os', 'setTimeout', 'setInterval',
                          'module', 'exports', 'Deno', 'Bun', 'print', 'scriptArgs', 'bjson',
                          'WebAssembly', 'Worker', 'XMLHttpRequest']) {
        seen[name] = typeof globalThis[name];
      }
      seen.console = typeof console.log;
      seen.fetch = typeof fetch;
      try { await import('os'); seen.import = 'loaded'; } catch (e) { seen.import = String(e); }
      try { await import('./x.js'); seen.importFile = 'loaded'; }
      catch (e) { seen.importFile = String(e); }
      const cell = new Int32Array(new SharedArrayBuffer(4));
      try { Atomics.wait(cell, 0, 0, 10000); seen.wait = 'waited'; }
      catch (e) { seen.wait = String(e); }
      return seen;
    }
    """
    outcome = run(pool, source)
    assert outcome.status == "succeeded", outcome
    seen = outcome.result
    for name in ("require", "process", "std", "os", "setTimeout", "setInterval", "module"):
        assert seen[name] == "undefined", (name, seen)
    for name in ("exports", "Deno", "Bun", "print", "scriptArgs", "bjson", "WebAssembly"):
        assert seen[name] == "undefined", (name, seen)
    assert seen["console"] == "function"
    assert seen["fetch"] == "function"
    assert "could not load module" in seen["import"]
    assert "could not load module" in seen["importFile"]
    assert "cannot block" in seen["wait"]


def test_static_import_is_a_compile_error(pool: SandboxPool) -> None:
    error = pool.compile("import * as os from 'os';\nfunction main() {}")
    assert error is not None
    assert error.line == 1


def test_fetch_without_a_fetcher_rejects(pool: SandboxPool) -> None:
    source = """
    async function main() {
      try { await fetch('http://127.0.0.1:9/'); return 'fetched'; }
      catch (e) { return [e instanceof TypeError, e.message]; }
    }
    """
    outcome = run(pool, source)
    assert outcome.result == [True, "fetch is not available here"]
    assert outcome.fetches == 0


def test_nothing_survives_into_the_next_execution(pool: SandboxPool) -> None:
    with SandboxPool(max_processes=1) as one:
        leave = """
        var leftVar = 1;
        globalThis.leftGlobal = 2;
        Object.prototype.polluted = 3;
        Array.prototype.map = () => 'hijacked';
        JSON.stringify = () => '"hijacked"';
        console.log = () => {};
        fetch = null;
        function main() { return 'left' }
        """
        assert run(one, leave).status == "succeeded"
        check = """
        function main() {
          console.log('still logging');
          return [typeof leftVar, typeof leftGlobal, ({}).polluted === undefined,
                  [1, 2].map((x) => x * 2), JSON.stringify({a: 1}), typeof fetch];
        }
        """
        outcome = run(one, check)
        assert outcome.result == ["undefined", "undefined", True, [2, 4], '{"a":1}', "function"]
        assert [line.message for line in outcome.logs] == ["still logging"]
        assert one.restarts == 0
        assert one.size == 1


def test_a_function_that_breaks_its_own_host_api_only_fails_itself(pool: SandboxPool) -> None:
    outcome = run(
        pool,
        "function main() { Array.prototype.push = () => { throw new Error('no') };"
        " console.log('x'); return 1 }",
    )
    assert outcome.status == "failed"
    assert_healthy(pool)


# -- hostile code: each ends as documented and leaves the pool healthy


def test_infinite_loop_times_out_and_the_process_is_reused(pool: SandboxPool) -> None:
    outcome, took, replaced = timed(pool, "function main() { for (;;) {} }")
    assert outcome.status == "timeout"
    assert TIMEOUT <= took < TIMEOUT + SLACK
    # The engine's time limit stops the loop; only a starved CPU leaves it to the kill.
    assert replaced == (1 if "stopped" in (outcome.error or "") else 0), outcome
    assert_healthy(pool)


def test_infinite_loop_at_top_level(pool: SandboxPool) -> None:
    outcome, took, _ = timed(pool, "while (true) {}\nfunction main() {}")
    assert outcome.status == "timeout"
    assert took < TIMEOUT + SLACK
    assert_healthy(pool)


def test_long_native_operation_is_killed_at_the_deadline(pool: SandboxPool) -> None:
    # One join of 300 MB takes seconds and never returns to the interpreter's time checks.
    outcome, took, replaced = timed(
        pool,
        "function main() { return new Array(1e8).join('abc').length }",
        limits=Limits(timeout_seconds=TIMEOUT, memory_mb=512),
    )
    assert outcome.status == "timeout", outcome
    assert took < TIMEOUT + SLACK
    assert replaced == 1
    assert "stopped" in (outcome.error or "")
    assert_healthy(pool)


def test_redos_times_out(pool: SandboxPool) -> None:
    outcome, took, replaced = timed(
        pool, "function main() { return /(a+)+$/.test('a'.repeat(40) + 'b') }"
    )
    assert outcome.status == "timeout"
    assert took < TIMEOUT + SLACK
    assert replaced == (1 if "stopped" in (outcome.error or "") else 0)
    assert_healthy(pool)


def test_memory_bomb_is_out_of_memory(pool: SandboxPool) -> None:
    bombs = [
        "const a = []; for (;;) a.push(new Array(1000).fill(1))",
        "const a = []; for (;;) a.push(new Uint8Array(1 << 20))",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i])",
    ]
    for bomb in bombs:
        # Memory, not time, must stop these: a generous timeout keeps a busy CPU out of it.
        outcome, _, replaced = timed(
            pool, f"function main() {{ {bomb} }}", limits=Limits(timeout_seconds=20, memory_mb=64)
        )
        assert outcome.status == "failed", (bomb, outcome)
        assert (outcome.error or "").startswith("out of memory: "), outcome
        assert replaced == 0
    assert_healthy(pool)


def test_string_doubling_fails(pool: SandboxPool) -> None:
    outcome, _, replaced = timed(pool, "function main() { let s = 'ab'; for (;;) s += s }")
    assert outcome.status == "failed"
    assert "string too long" in (outcome.error or "") or "out of memory" in (outcome.error or "")
    assert replaced == 0
    assert_healthy(pool)


def test_deep_recursion_fails(pool: SandboxPool) -> None:
    recursions = [
        "function r(n) { return r(n + 1) + 1 } return r(0)",
        "let p = {}; for (let i = 0; i < 1e5; i++) p = new Proxy(p, {}); return p.x",
        "const h = {}; const p = new Proxy({}, h); h.get = (t, k) => p[k]; return p.x",
        "let a = []; for (let i = 0; i < 1e5; i++) a = [a]; return JSON.stringify(a)",
        "return eval('('.repeat(1e5))",
    ]
    for recursion in recursions:
        outcome, _, replaced = timed(pool, f"function main() {{ {recursion} }}")
        assert outcome.status == "failed", (recursion, outcome)
        assert "Maximum call stack size exceeded" in (outcome.error or ""), outcome
        assert replaced == 0
    assert_healthy(pool)


def test_promise_flood_times_out(pool: SandboxPool) -> None:
    floods = [
        "async function main() { for (;;) await null }",
        # f returns nothing: the jobs never end, but they hold no memory.
        "function main() { const f = () => { Promise.resolve().then(f) }; f();"
        " return new Promise(() => {}) }",
        # main has settled, but the jobs it left behind never end: the run still ends.
        "function main() { const f = () => queueMicrotask(f); f(); return 1 }",
    ]
    for flood in floods:
        outcome, took, replaced = timed(pool, flood)
        assert took < TIMEOUT + SLACK, flood
        assert replaced == 0
        if "return 1" in flood:
            assert (outcome.status, outcome.result) == ("succeeded", 1)
        else:
            assert outcome.status == "timeout", (flood, outcome)
    assert_healthy(pool)


def test_never_settling_promise_ends_early(pool: SandboxPool) -> None:
    outcome, took, replaced = timed(pool, "function main() { return new Promise(() => {}) }")
    assert outcome.status == "timeout"
    assert "never settled" in (outcome.error or "")
    assert took < TIMEOUT / 2
    assert replaced == 0


def test_huge_result_fails(pool: SandboxPool) -> None:
    outcome, _, replaced = timed(
        pool, "function main() { return Array.from({length: 3e4}, (_, i) => 'item ' + i) }"
    )
    assert outcome.status == "failed"
    assert "too large" in (outcome.error or "")
    assert replaced == 0


def test_huge_logs_are_truncated(pool: SandboxPool) -> None:
    outcome, took, replaced = timed(
        pool, "function main() { const s = 'x'.repeat(1 << 20); for (;;) console.log(s) }"
    )
    assert outcome.status == "timeout"
    assert took < TIMEOUT + SLACK
    assert replaced == (1 if "stopped" in (outcome.error or "") else 0)
    if replaced == 0:
        assert len(outcome.logs) == 2
        assert "truncated" in outcome.logs[-1].message
    assert_healthy(pool)


def test_killed_process_is_a_crash_and_is_replaced() -> None:
    with SandboxPool(max_processes=1) as one:
        one.warm(1)
        (pid,) = one.pids
        outcomes: list[Outcome] = []
        job = RunRequest("function main() { for (;;) {} }", limits=Limits(timeout_seconds=10))
        runner = threading.Thread(target=lambda: outcomes.append(one.run(job)))
        runner.start()
        time.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        runner.join(5)
        (outcome,) = outcomes
        assert outcome.status == "failed"
        assert (outcome.error or "").startswith("sandbox crashed"), outcome
        assert "SIGKILL" in (outcome.error or "")
        assert outcome.duration_ms < 5000
        assert one.restarts == 1
        assert_healthy(one)
        assert one.pids != [pid]


def test_process_that_died_while_idle_is_replaced() -> None:
    with SandboxPool(max_processes=1) as one:
        one.warm(1)
        (pid,) = one.pids
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        assert_healthy(one)
        assert one.restarts == 1
        assert one.size == 1


def test_prestart_starts_up_to_count_while_runs_go_on() -> None:
    with SandboxPool(max_processes=4, max_starting=1) as four:
        outcomes: list[Outcome] = []
        starter = threading.Thread(target=four.prestart, args=(3,))
        starter.start()
        # A run meanwhile takes an idle process or a start slot; it is not held up until
        # all three exist (warm() would hold every process until then).
        outcomes.append(run(four, "function main(input) { return input }", 7))
        starter.join(30)
        assert not starter.is_alive()
        assert [(o.status, o.result) for o in outcomes] == [("succeeded", 7)]
        assert four.size == 3
        # Enough are live: another call starts none, and the count is capped.
        assert four.prestart(3) == 0
        assert four.prestart(99) == 1
        assert four.size == 4


def test_prestart_ends_when_the_pool_closes() -> None:
    many = SandboxPool(max_processes=50, max_starting=1)
    started: list[int] = []
    starter = threading.Thread(target=lambda: started.append(many.prestart(50)))
    starter.start()
    time.sleep(0.3)
    many.close()
    starter.join(10)
    assert not starter.is_alive()
    (count,) = started
    assert count < 50
    assert many.size == 0


# -- compile


def test_compile_accepts_good_sources(pool: SandboxPool) -> None:
    assert pool.compile("async function main(input, ctx) { return input }") is None
    assert pool.compile("'use strict';\nconst main = () => 1") is None
    assert pool.compile("#!/usr/bin/env qjs\nfunction main() {}") is None


def test_compile_reports_line_and_column(pool: SandboxPool) -> None:
    error = pool.compile("function main() {\n  let x = ;\n}")
    assert error is not None
    assert error.message.startswith("SyntaxError")
    assert (error.line, error.column) == (2, 11)
    strict = pool.compile("'use strict';\nfunction main() {\n  with (Math) {}\n}")
    assert strict is not None
    assert strict.line == 3


def test_compile_never_runs_the_source(pool: SandboxPool) -> None:
    started = time.monotonic()
    assert pool.compile("for (;;) {}\nfunction main() {}") is None
    # A source that tries to close a wrapper and run code of its own is only a syntax error.
    escape = pool.compile("}); for (;;) {}; (function () {")
    assert escape is not None
    assert time.monotonic() - started < 1.0
    assert_healthy(pool)


# -- the pool


def test_pool_runs_jobs_from_many_threads() -> None:
    with SandboxPool(max_processes=2) as two:
        results: list[Outcome] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            outcome = two.run(RunRequest("function main(input) { return input * 2 }", input=i))
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(o.result for o in results) == [i * 2 for i in range(8)]
        assert two.size <= 2
        assert two.restarts == 0


def test_closed_pool_refuses_work() -> None:
    one = SandboxPool(max_processes=1)
    one.warm(1)
    (pid,) = one.pids
    one.close()
    assert one.size == 0
    with pytest.raises(SandboxError):
        one.run(RunRequest("function main() {}"))
    # The process is gone (reaped, so not even a zombie).
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_closing_ends_runs_in_progress() -> None:
    one = SandboxPool(max_processes=1)
    outcomes: list[Outcome] = []
    job = RunRequest("function main() { for (;;) {} }", limits=Limits(timeout_seconds=10))
    runner = threading.Thread(target=lambda: outcomes.append(one.run(job)))
    runner.start()
    while not one.pids:
        time.sleep(0.01)
    time.sleep(0.2)
    one.close()
    runner.join(5)
    assert [(o.status, o.error) for o in outcomes] == [("failed", "the sandbox pool was closed")]


def test_the_pool_never_imports_quickjs() -> None:
    script = (
        "import sys\n"
        "from neosl.functions.sandbox import RunRequest, SandboxPool\n"
        "with SandboxPool(max_processes=1) as pool:\n"
        "    assert pool.run(RunRequest('function main() { return 1 }')).result == 1\n"
        "    assert pool.compile('function main() {}') is None\n"
        "assert 'quickjs' not in sys.modules and '_quickjs' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
