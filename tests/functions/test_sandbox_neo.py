"""neo.call and neo.invoke in the sandbox: calls read the real node, actions are recorded.

neo.call goes through the executor's own reader (``NeoReader``) to the dev chain's native
GAS contract; neo.invoke needs no node (nothing is sent while a function runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from neosl.config import Settings
from neosl.functions.sandbox import Action, Limits, Outcome, RunRequest, SandboxPool
from neosl.neo.rpc import NeoRpc
from neosl_executor.neo_calls import NeoReader

pytestmark = pytest.mark.neo

GAS = "0xd2a4cff31913016155e38e474a2c06d08be276cf"
LIMITS = Limits(timeout_seconds=10, memory_mb=64, neo_calls=3, neo_actions=2)


@pytest.fixture(scope="module")
def pool(settings: Settings) -> Iterator[SandboxPool]:
    with (
        NeoRpc(settings.neo_rpc_urls) as rpc,
        SandboxPool(max_processes=2, neo_caller=NeoReader(rpc)) as pool,
    ):
        yield pool


def run(pool: SandboxPool, source: str, input: Any = None, limits: Limits = LIMITS) -> Outcome:
    return pool.run(RunRequest(source, input=input, limits=limits))


def test_neo_call_reads_a_contract_and_decodes_its_result(
    pool: SandboxPool, settings: Settings
) -> None:
    assert settings.deposit_address is not None
    outcome = run(
        pool,
        """
        async function main(input) {
          const symbol = await neo.call(input.gas, "symbol", []);
          const decimals = await neo.call(input.gas, "decimals");
          const balance = await neo.call(input.gas, "balanceOf", [neo.hash160(input.who)]);
          return { symbol, decimals, balance: typeof balance };
        }
        """,
        {"gas": GAS, "who": settings.deposit_address},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {"symbol": "GAS", "decimals": 8, "balance": "number"}


def test_a_call_that_faults_rejects_with_the_vm_exception(pool: SandboxPool) -> None:
    outcome = run(
        pool,
        """
        async function main(input) {
          try { await neo.call(input, "noSuchMethod", [1]); return "resolved"; }
          catch (e) { return String(e.message); }
        }
        """,
        GAS,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result.startswith(f"neo.call: {GAS}.noSuchMethod ended in FAULT"), outcome


def test_arguments_that_cannot_be_mapped_are_refused_with_their_position(
    pool: SandboxPool,
) -> None:
    outcome = run(
        pool,
        """
        async function main(input) {
          const out = [];
          for (const args of [[1.5], [{x: 1}], [1, [true, 0.25]]]) {
            try { await neo.call(input, "balanceOf", args); out.push("resolved"); }
            catch (e) { out.push(String(e.message)); }
          }
          return out;
        }
        """,
        GAS,
    )
    assert outcome.status == "succeeded", outcome.error
    first, second, third = outcome.result
    assert first.startswith("neo.call: args[0]: 1.5 is not an integer"), first
    assert second.startswith("neo.call: args[0]"), second
    assert third.startswith("neo.call: args[1][1]: 0.25 is not an integer"), third


def test_calls_are_limited_per_execution_and_absent_when_not_allowed(pool: SandboxPool) -> None:
    source = """
      async function main(input) {
        const out = [];
        for (let i = 0; i < 4; i++) {
          try { out.push(await neo.call(input, "symbol")); } catch (e) { out.push(e.message); }
        }
        return out;
      }
    """
    outcome = run(pool, source, GAS)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == ["GAS", "GAS", "GAS", "neo.call: at most 3 calls per execution"]
    none = run(pool, source, GAS, Limits(timeout_seconds=10, memory_mb=64))
    assert none.status == "succeeded", none.error
    assert none.result == ["neo.call: at most 0 calls per execution"] * 4


def test_invoke_records_actions_of_a_run_that_succeeds(pool: SandboxPool) -> None:
    outcome = run(
        pool,
        """
        function main(input) {
          const a = neo.invoke(input, "transfer", [
            neo.hash160("NZNovGA5K8t52qdJz3EJXkXpBZKNmHF6cQ"), neo.hash160(input), 1, null]);
          const b = neo.invoke(input.toUpperCase().replace("0X", "0x"), "symbol");
          return [a, b];
        }
        """,
        GAS,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [0, 1]
    assert outcome.actions == [
        Action(
            GAS,
            "transfer",
            [
                {"$neo": "Hash160", "value": "NZNovGA5K8t52qdJz3EJXkXpBZKNmHF6cQ"},
                {"$neo": "Hash160", "value": GAS},
                1,
                None,
            ],
        ),
        Action(GAS, "symbol", []),
    ]


def test_a_run_that_fails_or_times_out_leaves_no_action(pool: SandboxPool) -> None:
    thrown = run(pool, 'function main(c) { neo.invoke(c, "symbol"); throw new Error("no") }', GAS)
    assert (thrown.status, thrown.actions) == ("failed", [])
    looped = run(
        pool,
        'function main(c) { neo.invoke(c, "symbol"); for (;;) {} }',
        GAS,
        Limits(timeout_seconds=0.5, memory_mb=64, neo_actions=2),
    )
    assert (looped.status, looped.actions) == ("timeout", [])


def test_invoke_is_limited_and_helpers_check_their_input(pool: SandboxPool) -> None:
    outcome = run(
        pool,
        """
        function main(c) {
          const out = [];
          const tries = [
            () => neo.invoke(c, "a"), () => neo.invoke("0x12", "a"),
            () => neo.invoke(c, "bad name"), () => neo.invoke(c, "b"), () => neo.invoke(c, "c"),
            () => neo.hash160("not an address"), () => neo.integer("12x"),
            () => neo.integer(2n ** 200n).value, () => neo.bytes("abc"),
          ];
          for (const t of tries) { try { out.push(t()); } catch (e) { out.push(e.message); } }
          return out;
        }
        """,
        GAS,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [
        0,
        "neo.invoke: the contract must be a 0x script hash of 40 hex digits",
        "neo.invoke: the method must be a name of letters, digits and _",
        1,
        "neo.invoke: at most 2 actions per execution",
        "neo.hash160: expects an address (N...) or a 0x script hash of 40 hex digits",
        "neo.integer: expects a whole number, as a string of decimal digits or a BigInt",
        str(2**200),
        "neo.bytes: expects hex digits (an even number, 0x optional)",
    ]
    assert [a.method for a in outcome.actions] == ["a", "b"]
