"""The Neo RPC client and transfer parsing, from recorded node answers (no node needed).

``tests/fixtures/neo/`` holds request/response pairs recorded from neo-go: most from a
0.116 private chain (network magic 42), the ``*_already_*``, ``*_expired`` and
``gettransactionheight_unknown_error`` ones from the 0.120 node the dev stack runs. A local
HTTP server replays them, so the client is exercised over real sockets.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from neosl.neo.rpc import (
    AlreadyKnown,
    ExpiredTransaction,
    NeoRpc,
    RpcError,
    RpcUnavailable,
)
from neosl.neo.transfers import (
    GAS_CONTRACT,
    GasTransfer,
    decode_gas_transfer,
    format_gas,
    gas_transfers,
    transaction_hash,
    transfer_faulted,
    transfer_succeeded,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "neo"

# From the recorded chain: the committee multisig (also the block's "nextconsensus"), the
# account it funded (the "sender" getblock shows for 0x291b…), and the validator's own
# account that collects network fees.
COMMITTEE = "NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP"
FUNDED = "Na4BNjSyrBDRGESC877KoKD45yg5GWUxuW"
VALIDATOR = "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def recorded_result(name: str) -> dict[str, Any]:
    result: dict[str, Any] = recorded(name)["response"]["result"]
    return result


# -- a local node speaking the recorded format ------------------------------------------


class FakeNode:
    """Answers each JSON-RPC method with a recorded response; counts the requests."""

    def __init__(
        self,
        answers: dict[str, dict[str, Any]] | None = None,
        *,
        status: int = 200,
        body: bytes | None = None,
        delay: float = 0.0,
    ) -> None:
        self.answers = answers or {}
        self.requests: list[dict[str, Any]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.requests.append(request)
                if delay:
                    time.sleep(delay)
                if body is not None or status != 200:
                    payload = body if body is not None else b"Service Unavailable"
                    self._send(status, payload, "text/plain")
                    return
                answer = node.answers.get(request["method"])
                if answer is None:
                    answer = {
                        "jsonrpc": "2.0",
                        "error": {"code": -32601, "message": "Method not found"},
                    }
                answer = {**answer, "id": request["id"]}
                self._send(200, json.dumps(answer).encode(), "application/json")

            def _send(self, code: int, payload: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answers_from(*names: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        pair = recorded(name)
        out[pair["request"]["method"]] = pair["response"]
    return out


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeNode]]:
    nodes: list[FakeNode] = []

    def start(*names: str, **kwargs: Any) -> FakeNode:
        node = FakeNode(answers_from(*names), **kwargs)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def closed_url() -> str:
    """A local port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- typed calls ------------------------------------------------------------------------


def test_typed_calls_parse_recorded_answers(serve: Callable[..., FakeNode]) -> None:
    node = serve(
        "getblockcount",
        "getblock_verbose",
        "getversion",
        "invokefunction_balanceOf",
        "gettransactionheight",
        "getapplicationlog_tx_Transfer",
        "sendrawtransaction",
        "invokescript",
        "calculatenetworkfee",
    )
    with NeoRpc([node.url]) as rpc:
        assert rpc.block_count() == 98
        assert rpc.block(99)["index"] == 99
        assert rpc.block_tx_hashes(99) == [
            "0x82a2b12682d725949ba4d8bdf0378facae38a6790461b39689554fc8ad7163e3"
        ]
        assert rpc.network_magic() == 42
        assert rpc.network_magic() == 42
        assert rpc.ms_per_block() == 1000
        assert rpc.gas_balance(FUNDED) == 8475278890
        assert rpc.transaction_height("0xfd9a") == 98
        log = rpc.application_log("0xfd9a")
        assert log is not None
        assert log["executions"][0]["vmstate"] == "HALT"
        tx_hash = "0xfd9aef3b4d77425fcf729145a988a97dc42070609c5a22f84ff07c538104f651"
        assert rpc.send_raw_transaction(b"\x00") == tx_hash
        assert rpc.invoke_script(b"\x00")["state"] == "HALT"
        assert rpc.calculate_network_fee(b"\x00") == 1237580

    # The magic is asked for once; the block time every time (the committee can change it).
    assert node.methods().count("getversion") == 2
    block_request = next(r for r in node.requests if r["method"] == "getblock")
    assert block_request["params"] == [99, True]
    balance_request = next(r for r in node.requests if r["method"] == "invokefunction")
    assert balance_request["params"][:2] == [GAS_CONTRACT, "balanceOf"]
    # The script hash big-endian with 0x, as neo-mamba sends it (the recorded request).
    assert (
        balance_request["params"][2] == recorded("invokefunction_balanceOf")["request"]["params"][2]
    )


def test_a_recent_block_count_is_asked_once_per_max_age(serve: Callable[..., FakeNode]) -> None:
    node = serve("getblockcount")
    with NeoRpc([node.url]) as rpc:
        assert [rpc.recent_block_count(60) for _ in range(5)] == [98] * 5
        assert node.methods() == ["getblockcount"]
        assert rpc.recent_block_count(0) == 98
        assert node.methods() == ["getblockcount"] * 2


def test_unknown_transaction_has_no_log_and_no_height(serve: Callable[..., FakeNode]) -> None:
    node = serve("getapplicationlog_unknown_error", "gettransactionheight_unknown_error")
    with NeoRpc([node.url]) as rpc:
        assert rpc.application_log("0x" + "ab" * 32) is None
        assert rpc.transaction_height("0x" + "ab" * 32) is None


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("sendrawtransaction_error", -501),  # neo-go 0.116, already in a block
        ("sendrawtransaction_already_on_chain", -501),  # 0.120
        ("sendrawtransaction_already_in_pool", -503),  # 0.120
    ],
)
def test_resent_transaction_is_already_known(
    serve: Callable[..., FakeNode], fixture: str, code: int
) -> None:
    node = serve(fixture)
    with NeoRpc([node.url]) as rpc, pytest.raises(AlreadyKnown) as caught:
        rpc.send_raw_transaction(b"\x00")
    assert caught.value.code == code
    assert caught.value.method == "sendrawtransaction"


def test_expired_transaction_is_reported_as_such(serve: Callable[..., FakeNode]) -> None:
    node = serve("sendrawtransaction_expired")
    with NeoRpc([node.url]) as rpc, pytest.raises(ExpiredTransaction) as caught:
        rpc.send_raw_transaction(b"\x00")
    assert caught.value.code == -510
    assert "ValidUntilBlock" in str(caught.value)


def test_full_mempool_is_not_already_known() -> None:
    # -502 means "refused, try later": mistaking it for "already known" would lose a send.
    mempool_full = {
        "jsonrpc": "2.0",
        "id": 0,
        "error": {
            "code": -502,
            "message": "The memory pool is full and no more transactions can be sent",
        },
    }
    node = FakeNode({"sendrawtransaction": mempool_full})
    try:
        with NeoRpc([node.url]) as rpc, pytest.raises(RpcError) as caught:
            rpc.send_raw_transaction(b"\x00")
    finally:
        node.stop()
    assert type(caught.value) is RpcError
    assert caught.value.code == -502


# -- failover ---------------------------------------------------------------------------


def test_refused_connection_fails_over_and_remembers(
    serve: Callable[..., FakeNode], closed_url: str
) -> None:
    good = serve("getblockcount")
    with NeoRpc([closed_url, good.url], backoff=0) as rpc:
        assert rpc.url == closed_url
        assert rpc.block_count() == 98
        assert rpc.url == good.url


def test_http_503_fails_over_and_the_failed_endpoint_is_not_retried_first(
    serve: Callable[..., FakeNode],
) -> None:
    down = serve(status=503)
    good = serve("getblockcount")
    with NeoRpc([down.url, good.url], backoff=0) as rpc:
        assert rpc.block_count() == 98
        assert rpc.block_count() == 98
    assert len(down.requests) == 1
    assert len(good.requests) == 2


@pytest.mark.parametrize(
    "broken",
    [
        {"status": 502},
        {"status": 200, "body": b"<html>gateway says hi</html>"},
        {"status": 200, "body": b"[1, 2]"},
        {"status": 404, "body": b"not here"},
    ],
)
def test_answers_that_are_not_json_rpc_fail_over(
    serve: Callable[..., FakeNode], broken: dict[str, Any]
) -> None:
    bad = serve(**broken)
    good = serve("getblockcount")
    with NeoRpc([bad.url, good.url], backoff=0) as rpc:
        assert rpc.block_count() == 98
        assert rpc.url == good.url


def test_timeout_fails_over(serve: Callable[..., FakeNode]) -> None:
    slow = serve("getblockcount", delay=2.0)
    good = serve("getblockcount")
    with NeoRpc([slow.url, good.url], timeout=0.2, backoff=0) as rpc:
        started = time.monotonic()
        assert rpc.block_count() == 98
        assert time.monotonic() - started < 1.5


def test_all_endpoints_down_raises_after_bounded_rounds(
    serve: Callable[..., FakeNode], closed_url: str
) -> None:
    down = serve(status=503)
    with NeoRpc([down.url, closed_url], attempts=3, backoff=0.05, max_backoff=0.1) as rpc:
        started = time.monotonic()
        with pytest.raises(RpcUnavailable) as caught:
            rpc.block_count()
        elapsed = time.monotonic() - started
    assert len(down.requests) == 3
    # Two pauses between three rounds: 0.05 then 0.1.
    assert 0.15 <= elapsed < 2
    assert "getblockcount" in str(caught.value)
    assert closed_url in str(caught.value)


def test_json_rpc_error_is_raised_without_trying_others(serve: Callable[..., FakeNode]) -> None:
    first = serve("getapplicationlog_unknown_error")
    second = serve("getapplicationlog_tx_Transfer")
    with NeoRpc([first.url, second.url]) as rpc, pytest.raises(RpcError) as caught:
        rpc.call("getapplicationlog", ["0xab"])
    assert caught.value.code == -105
    assert caught.value.message == "Unknown script container"
    assert second.requests == []


# -- one endpoint at a time --------------------------------------------------------------


def test_endpoints_each_ask_only_their_own_node(
    serve: Callable[..., FakeNode], closed_url: str
) -> None:
    # What settling a withdrawal relies on: every fact of one client comes from one node.
    behind = serve("getblockcount", "getapplicationlog_unknown_error")
    ahead = serve("getblockcount", "getapplicationlog_tx_Transfer", "gettransactionheight")
    with NeoRpc([closed_url, behind.url, ahead.url], backoff=0) as rpc:
        down, first, second = rpc.endpoints()
        assert [e.urls for e in (down, first, second)] == [
            (closed_url,),
            (behind.url,),
            (ahead.url,),
        ]
        # A node that does not answer is not replaced by another: one try, no pause.
        started = time.monotonic()
        with pytest.raises(RpcUnavailable, match=closed_url):
            down.block_count()
        assert time.monotonic() - started < 1
        assert behind.requests == []
        assert ahead.requests == []
        # "Unknown" from one node stays that node's answer.
        assert first.block_count() == 98
        assert first.application_log("0xfd9a") is None
        log = second.application_log("0xfd9a")
        assert log is not None
        assert log["txid"] == recorded_result("getapplicationlog_tx_Transfer")["txid"]
        assert second.transaction_height("0xfd9a") == 98
        assert behind.methods() == ["getblockcount", "getapplicationlog"]
        assert ahead.methods() == ["getapplicationlog", "gettransactionheight"]


def test_endpoints_share_the_client_and_start_with_the_preferred_one(
    serve: Callable[..., FakeNode], closed_url: str
) -> None:
    good = serve("getblockcount")
    with NeoRpc([closed_url, good.url], backoff=0) as rpc:
        assert rpc.block_count() == 98  # fails over; good is preferred now
        endpoints = rpc.endpoints()
        assert [e.url for e in endpoints] == [good.url, closed_url]
        for endpoint in endpoints:
            endpoint.close()
        # Closing them closed nothing: the shared client still works.
        assert rpc.block_count() == 98
        assert endpoints[0].block_count() == 98
    with NeoRpc([good.url]) as rpc, pytest.raises(ValueError, match="attempts"):
        rpc.endpoints(attempts=0)


def test_needs_a_url() -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        NeoRpc([])


# -- reading transfers out of application logs ------------------------------------------


def test_transfer_transaction_log() -> None:
    log = recorded_result("getapplicationlog_tx_Transfer")
    assert gas_transfers(log) == [
        GasTransfer(
            tx_hash="0xfd9aef3b4d77425fcf729145a988a97dc42070609c5a22f84ff07c538104f651",
            notification_index=0,
            from_address=COMMITTEE,
            to_address=FUNDED,
            amount=100 * 10**8,
        )
    ]
    assert transfer_succeeded(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert not transfer_faulted(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert not transfer_faulted(log)


@pytest.mark.parametrize(
    ("from_address", "to_address", "amount"),
    [
        (COMMITTEE, FUNDED, 100 * 10**8 - 1),
        (FUNDED, COMMITTEE, 100 * 10**8),
        (COMMITTEE, VALIDATOR, 100 * 10**8),
    ],
)
def test_a_different_transfer_does_not_count(
    from_address: str, to_address: str, amount: int
) -> None:
    log = recorded_result("getapplicationlog_tx_Transfer")
    assert not transfer_succeeded(log, from_address, to_address, amount)
    assert transfer_faulted(log, from_address, to_address, amount)


def test_block_log_mints_and_burns_have_no_address_on_one_side() -> None:
    log = recorded_result("getapplicationlog_block")
    block_hash = "0x415d627516f18f4f989e88a35e55baa5fc9dfa3684a0ab52be88f5f4e77e5bfc"
    assert gas_transfers(log) == [
        # The fees of the block's transaction (sysfee 9977750 + netfee 1231520) burnt...
        GasTransfer(block_hash, 0, FUNDED, None, 11209270),
        # ...the network fee minted to the validator, then its block reward.
        GasTransfer(block_hash, 1, None, VALIDATOR, 1231520),
        GasTransfer(block_hash, 2, None, VALIDATOR, 50000000),
    ]
    # A block's log is not one transaction: neither verdict applies.
    assert not transfer_succeeded(log, FUNDED, VALIDATOR, 1231520)
    assert not transfer_faulted(log)


def test_faulted_transaction_moves_nothing() -> None:
    log = copy.deepcopy(recorded_result("getapplicationlog_tx_Transfer"))
    execution = log["executions"][0]
    execution["vmstate"] = "FAULT"
    execution["exception"] = "at instruction 86 (SYSCALL): ABORT"
    execution["stack"] = []
    # Kept on purpose: even if a node listed notifications, a FAULT undoes them.
    assert gas_transfers(log) == []
    assert not transfer_succeeded(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert transfer_faulted(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert transfer_faulted(log)


def test_halt_with_false_is_a_failed_transfer() -> None:
    # What a transfer of more than the balance looks like: HALT, false, no notification.
    log = copy.deepcopy(recorded_result("getapplicationlog_tx_Transfer"))
    execution = log["executions"][0]
    execution["stack"] = [{"type": "Boolean", "value": False}]
    execution["notifications"] = []
    assert not transfer_succeeded(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert transfer_faulted(log, COMMITTEE, FUNDED, 100 * 10**8)


def test_halt_true_without_the_notification_is_not_success() -> None:
    log = copy.deepcopy(recorded_result("getapplicationlog_tx_Transfer"))
    log["executions"][0]["notifications"] = []
    assert not transfer_succeeded(log, COMMITTEE, FUNDED, 100 * 10**8)
    assert transfer_faulted(log)


def test_index_counts_notifications_of_every_contract() -> None:
    log = copy.deepcopy(recorded_result("getapplicationlog_tx_Transfer"))
    other = {
        "contract": "0xef4073a0f2b305a38ec4050e4d3d28bc40ea63f5",
        "eventname": "Transfer",
        "state": {"type": "Array", "value": []},
    }
    log["executions"][0]["notifications"].insert(0, other)
    (transfer,) = gas_transfers(log)
    assert transfer.notification_index == 1


def _with_notification(notification: object) -> dict[str, Any]:
    log = copy.deepcopy(recorded_result("getapplicationlog_tx_Transfer"))
    log["executions"][0]["notifications"] = [notification]
    return log


GOOD_FROM = {"type": "ByteString", "value": "2MxakE1Sb8mmyrVboCyab+eJyVY="}
GOOD_AMOUNT = {"type": "Integer", "value": "5"}


def _transfer(*values: object, contract: str = GAS_CONTRACT, event: str = "Transfer") -> object:
    return {
        "contract": contract,
        "eventname": event,
        "state": {"type": "Array", "value": list(values)},
    }


@pytest.mark.parametrize(
    "notification",
    [
        None,
        "Transfer",
        {"contract": GAS_CONTRACT, "eventname": "Transfer"},
        {"contract": GAS_CONTRACT, "eventname": "Transfer", "state": {"type": "Integer"}},
        _transfer(GOOD_FROM, GOOD_FROM),
        _transfer(GOOD_FROM, GOOD_FROM, GOOD_AMOUNT, GOOD_AMOUNT),
        _transfer(GOOD_FROM, {"type": "ByteString", "value": "not base64!"}, GOOD_AMOUNT),
        _transfer(GOOD_FROM, {"type": "ByteString", "value": "AAAA"}, GOOD_AMOUNT),
        _transfer(GOOD_FROM, {"type": "Integer", "value": "1"}, GOOD_AMOUNT),
        _transfer(GOOD_FROM, None, GOOD_AMOUNT),
        _transfer(GOOD_FROM, GOOD_FROM, {"type": "Integer", "value": "-1"}),
        _transfer(GOOD_FROM, GOOD_FROM, {"type": "Integer", "value": "1.5"}),
        _transfer(GOOD_FROM, GOOD_FROM, {"type": "Integer", "value": True}),
        _transfer(GOOD_FROM, GOOD_FROM, {"type": "ByteString", "value": "BQ=="}),
        _transfer(GOOD_FROM, GOOD_FROM, GOOD_AMOUNT, contract="0x" + "00" * 20),
        _transfer(GOOD_FROM, GOOD_FROM, GOOD_AMOUNT, event="Approval"),
    ],
)
def test_malformed_notifications_are_skipped(notification: object) -> None:
    log = _with_notification(notification)
    assert gas_transfers(log) == []
    assert not transfer_succeeded(log, COMMITTEE, COMMITTEE, 5)


def test_the_well_formed_control_case_is_read() -> None:
    (transfer,) = gas_transfers(_with_notification(_transfer(GOOD_FROM, GOOD_FROM, GOOD_AMOUNT)))
    assert (transfer.from_address, transfer.to_address, transfer.amount) == (
        COMMITTEE,
        COMMITTEE,
        5,
    )


def test_decode_single_notifications() -> None:
    notifications = recorded_result("getapplicationlog_block")["executions"][0]["notifications"]
    burn, mint = notifications
    assert decode_gas_transfer(burn) == (FUNDED, None, 11209270)
    assert decode_gas_transfer(mint) == (None, VALIDATOR, 1231520)
    # Hex case in the contract hash does not matter.
    shouting = {**burn, "contract": "0x" + GAS_CONTRACT[2:].upper()}
    assert decode_gas_transfer(shouting) == (FUNDED, None, 11209270)
    assert decode_gas_transfer({**burn, "eventname": "Approval"}) is None


@pytest.mark.parametrize(
    "log",
    [{}, {"executions": None}, {"executions": [None, 3]}, {"txid": "0x1", "executions": "x"}],
)
def test_malformed_logs_hold_no_transfers(log: dict[str, Any]) -> None:
    assert gas_transfers(log) == []
    assert not transfer_succeeded(log, COMMITTEE, FUNDED, 1)
    assert not transfer_faulted(log)


# -- transactions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "sendrawtransaction",
            "0xfd9aef3b4d77425fcf729145a988a97dc42070609c5a22f84ff07c538104f651",
        ),
        # The transaction of block 99 in getblock_verbose.
        (
            "sendrawtransaction_error",
            "0x82a2b12682d725949ba4d8bdf0378facae38a6790461b39689554fc8ad7163e3",
        ),
    ],
)
def test_transaction_hash_is_the_form_the_node_uses(fixture: str, expected: str) -> None:
    raw = base64.b64decode(recorded(fixture)["request"]["params"][0])
    assert transaction_hash(raw) == expected


def test_transaction_hash_of_garbage() -> None:
    with pytest.raises(ValueError, match="not a serialized transaction"):
        transaction_hash(b"\x00\x01")


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (0, "0"),
        (1, "0.00000001"),
        (120000000, "1.2"),
        (500 * 10**8, "500"),
        (10**8 + 5, "1.00000005"),
    ],
)
def test_format_gas(units: int, text: str) -> None:
    assert format_gas(units) == text
