"""A synchronous Neo N3 JSON-RPC client that fails over between endpoints.

Celery tasks are synchronous, so this does not use neo-mamba's asyncio client; neo-mamba
is still used to build and sign transactions (see ``transfers``).

Two kinds of failure are kept apart:

- the endpoint did not answer usefully (connection refused, timeout, HTTP 5xx, an answer
  that is not JSON-RPC): the next endpoint is tried, and ``RpcUnavailable`` is raised
  once every endpoint failed ``attempts`` rounds in a row;
- the node answered with a JSON-RPC error object: ``RpcError`` at once, since another
  node of the same network would give the same answer.

Sending a transaction is safe to retry: a node that already has it answers with an error
that ``send_raw_transaction`` turns into ``AlreadyKnown``.

Failover means two calls may be answered by two nodes. Where several facts must come from
the same node (its height, then whether it knows a transaction), use ``endpoints()``.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from neosl.closing import Closing
from neosl.neo.addresses import address_to_script_hash

log = logging.getLogger(__name__)

# The native GAS token; the same hash on every Neo N3 network.
GAS_CONTRACT = "0xd2a4cff31913016155e38e474a2c06d08be276cf"

# NEP-23 codes (neo-go 0.102+). -502 ("The memory pool is full") is deliberately not here:
# the transaction was refused and must be sent again later.
ALREADY_EXISTS_ON_CHAIN = -501
ALREADY_IN_POOL = -503
EXPIRED_TRANSACTION = -510
UNKNOWN_TRANSACTION = -103
UNKNOWN_SCRIPT_CONTAINER = -105


# What _call_unless_unknown answers for an unknown transaction (None is a possible result).
_UNKNOWN = object()


class RpcError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        detail = f" - {data}" if data not in (None, "") else ""
        super().__init__(f"{method}: {message} ({code}){detail}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class AlreadyKnown(RpcError):
    """``sendrawtransaction``: the node already has the transaction, pooled or on chain."""


class ExpiredTransaction(RpcError):
    """``sendrawtransaction``: the transaction's ``valid_until_block`` has passed.

    Such a transaction can never be included; a new one (new nonce, new hash) is needed.
    """


class RpcUnavailable(Exception):
    """No endpoint gave a usable answer after every attempt; the message names the last error."""


class _EndpointFailure(Exception):
    """This endpoint did not answer usefully; another one may."""


def _rpc_error(method: str, error: object) -> RpcError:
    if not isinstance(error, dict):
        return RpcError(method, None, str(error))
    code = error.get("code")
    return RpcError(
        method,
        code if isinstance(code, int) else None,
        str(error.get("message", "")),
        error.get("data"),
    )


def _is_already_known(error: RpcError) -> bool:
    if error.code in (ALREADY_EXISTS_ON_CHAIN, ALREADY_IN_POOL):
        return True
    # Nodes predating NEP-23 answer -500 or -100 and say it only in words.
    text = f"{error.message} {error.data or ''}".lower()
    return "already exists" in text or "already in" in text


class NeoRpc(Closing):
    """JSON-RPC to one Neo N3 network through one or more equivalent endpoints.

    One instance may serve several threads: httpx's client is thread-safe, and the
    preferred endpoint is a plain attribute that any thread may move on.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        """
        Raises:
            ValueError: no URL, or a non-positive ``attempts``/``timeout``.
        """
        if isinstance(urls, str):
            # A bare string is a sequence of one-letter "URLs".
            urls = [urls]
        if not urls:
            raise ValueError("NeoRpc needs at least one URL")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._urls = tuple(urls)
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client()
        self._preferred = 0
        self._ids = itertools.count(1)
        self._magic: int | None = None
        # (block count, time.monotonic() when read) for ``recent_block_count``.
        self._height: tuple[int, float] | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def url(self) -> str:
        """The endpoint tried first: the one that answered last."""
        return self._urls[self._preferred]

    def close(self) -> None:
        """Close the HTTP client if this instance created it (not one it was given)."""
        if self._owns_client:
            self._client.close()

    def endpoints(self, *, attempts: int = 1) -> list[NeoRpc]:
        """One client per endpoint, each asking only its own URL (no failover), preferred first.

        For decisions that must rest on what one node says: with failover, two answers can
        come from two nodes, one of them lagging. They share this instance's HTTP client,
        so closing them closes nothing; use them only while this instance is open. With the
        default single attempt, an endpoint that does not answer raises ``RpcUnavailable``
        at once, without a pause.

        Raises:
            ValueError: ``attempts`` is below 1.
        """
        order = self._urls[self._preferred :] + self._urls[: self._preferred]
        return [
            NeoRpc(
                [url],
                timeout=self._timeout,
                attempts=attempts,
                backoff=self._backoff,
                max_backoff=self._max_backoff,
                client=self._client,
            )
            for url in order
        ]

    def call(self, method: str, params: list[Any]) -> Any:
        """Call ``method`` and return its ``result``.

        Raises:
            RpcError: the node answered with a JSON-RPC error (no other endpoint is tried).
            RpcUnavailable: every endpoint failed ``attempts`` rounds in a row.
        """
        count = len(self._urls)
        last_error = "no attempt made"
        for round_ in range(self._attempts):
            if round_:
                time.sleep(min(self._backoff * 2 ** (round_ - 1), self._max_backoff))
            start = self._preferred
            for offset in range(count):
                index = (start + offset) % count
                url = self._urls[index]
                try:
                    result = self._post(url, method, params)
                except _EndpointFailure as exc:
                    last_error = f"{url}: {exc}"
                    log.warning("neo rpc %s failed on %s: %s", method, url, exc)
                    continue
                if index != self._preferred:
                    log.info("neo rpc now prefers %s", url)
                    self._preferred = index
                return result
        raise RpcUnavailable(
            f"{method}: no Neo RPC endpoint answered ({count} endpoint(s), "
            f"{self._attempts} round(s)); last error: {last_error}"
        )

    def _post(self, url: str, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._client.post(url, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise _EndpointFailure(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise _EndpointFailure(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise _EndpointFailure(f"HTTP {response.status_code}: not JSON") from None
        if not isinstance(answer, dict):
            raise _EndpointFailure(f"HTTP {response.status_code}: not a JSON-RPC answer")
        if answer.get("error") is not None:
            raise _rpc_error(method, answer["error"])
        if "result" not in answer:
            raise _EndpointFailure(f"HTTP {response.status_code}: no result and no error")
        return answer["result"]

    # -- typed wrappers -----------------------------------------------------------------

    def block_count(self) -> int:
        """``getblockcount``: the highest block index + 1.

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        return _int(self.call("getblockcount", []), "getblockcount")

    def recent_block_count(self, max_age: float) -> int:
        """``block_count``, read again only when the last read is older than ``max_age``
        seconds: a lower bound of the current one, for a transaction's ``valid_until_block``
        (a height a block old makes it valid a block less), which every relayed transaction
        needs and a burst of them need not ask for one by one.

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        now = time.monotonic()
        last = self._height
        if last is not None and now - last[1] <= max_age:
            return last[0]
        count = self.block_count()
        self._height = (count, now)
        return count

    def block(self, index: int) -> dict[str, Any]:
        """``getblock [index, true]``: the block as verbose JSON, transactions included.

        Raises:
            RpcError: e.g. -101 "Unknown block" for an index not reached yet.
            RpcUnavailable: as ``call``.
        """
        return _dict(self.call("getblock", [index, True]), "getblock")

    def block_tx_hashes(self, index: int) -> list[str]:
        """The hashes ("0x…") of the transactions in block ``index``, in block order.

        Raises:
            RpcError, RpcUnavailable: as ``block``.
        """
        txs = self.block(index).get("tx") or []
        return [str(tx["hash"]) for tx in txs]

    def application_log(self, tx_hash: str) -> dict[str, Any] | None:
        """``getapplicationlog``; None while the node does not know the transaction.

        A transaction still in the memory pool has no log yet either.

        Raises:
            RpcError: any other JSON-RPC error.
            RpcUnavailable: as ``call``.
        """
        result = self._call_unless_unknown("getapplicationlog", tx_hash)
        return None if result is _UNKNOWN else _dict(result, "getapplicationlog")

    def wait_for_application_log(
        self, tx_hash: str, *, timeout: float, poll: float | None = None
    ) -> dict[str, Any] | None:
        """Poll ``application_log`` until the transaction is in a block; None after ``timeout``.

        ``poll`` defaults to a quarter of the block time (read from the node).

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        if poll is None:
            poll = min(max(self.ms_per_block() / 4000, 0.05), 2.0)
        deadline = time.monotonic() + timeout
        while True:
            found = self.application_log(tx_hash)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(poll, left))

    def send_raw_transaction(self, raw: bytes) -> str:
        """``sendrawtransaction``; returns the transaction hash ("0x…").

        Raises:
            AlreadyKnown: the node has the transaction already (pooled or on chain); sending
                it again was harmless.
            ExpiredTransaction: its ``valid_until_block`` has passed; it can never be included.
            RpcError: any other refusal (bad signature, insufficient funds, …).
            RpcUnavailable: as ``call``. The transaction may or may not have reached a node:
                send it again (it is idempotent) or watch for its hash.
        """
        try:
            result = self.call("sendrawtransaction", [base64.b64encode(raw).decode()])
        except RpcError as exc:
            if _is_already_known(exc):
                raise AlreadyKnown(exc.method, exc.code, exc.message, exc.data) from exc
            if exc.code == EXPIRED_TRANSACTION:
                raise ExpiredTransaction(exc.method, exc.code, exc.message, exc.data) from exc
            raise
        return str(_dict(result, "sendrawtransaction")["hash"])

    def version(self) -> dict[str, Any]:
        """``getversion`` as returned.

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        return _dict(self.call("getversion", []), "getversion")

    def network_magic(self) -> int:
        """The network's magic number (signatures are bound to it); asked once, then cached.

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        if self._magic is None:
            self._magic = _int(self.version()["protocol"]["network"], "getversion")
        return self._magic

    def ms_per_block(self) -> int:
        """The current block time in milliseconds (not cached: the committee can change it).

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        return _int(self.version()["protocol"]["msperblock"], "getversion")

    def invoke_script(
        self, script: bytes, signers: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """``invokescript``: run ``script`` without persisting anything; the raw result.

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        params = [base64.b64encode(script).decode(), list(signers)]
        return _dict(self.call("invokescript", params), "invokescript")

    def invoke_function(
        self,
        contract: str,
        method: str,
        params: Sequence[dict[str, Any]] = (),
        signers: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """``invokefunction``: a read-only test invocation of ``contract.method``.

        ``params`` are ContractParameter JSON (``neosl.neo.params.to_rpc``).

        Raises:
            RpcError, RpcUnavailable: as ``call``.
        """
        args: list[Any] = [contract, method, list(params)]
        if signers:
            args.append(list(signers))
        return _dict(self.call("invokefunction", args), "invokefunction")

    def calculate_network_fee(self, raw: bytes) -> int:
        """``calculatenetworkfee`` for a serialized transaction, in units of 1e-8 GAS.

        The transaction must carry witnesses of the right shape (neo-go checks them).

        Raises:
            RpcError: e.g. -508 when the witnesses do not match the signers.
            RpcUnavailable: as ``call``.
        """
        result = self.call("calculatenetworkfee", [base64.b64encode(raw).decode()])
        return _int(_dict(result, "calculatenetworkfee")["networkfee"], "calculatenetworkfee")

    def gas_balance(self, address: str) -> int:
        """The GAS balance of ``address`` in units of 1e-8 GAS (``balanceOf`` on GAS).

        Raises:
            InvalidAddress: ``address`` is not a Neo N3 address.
            RpcError: the node refused, or the invocation did not HALT with an integer.
            RpcUnavailable: as ``call``.
        """
        param = {"type": "Hash160", "value": f"0x{address_to_script_hash(address)}"}
        result = _dict(
            self.call("invokefunction", [GAS_CONTRACT, "balanceOf", [param]]), "invokefunction"
        )
        stack = result.get("stack") or []
        if result.get("state") != "HALT" or len(stack) != 1 or stack[0].get("type") != "Integer":
            raise RpcError(
                "invokefunction",
                None,
                f"balanceOf did not HALT with an integer: state {result.get('state')}, "
                f"exception {result.get('exception')!r}",
            )
        return int(stack[0]["value"])

    def transaction_height(self, tx_hash: str) -> int | None:
        """The index of the block holding the transaction; None if it is not on chain.

        Raises:
            RpcError: any error other than "unknown transaction".
            RpcUnavailable: as ``call``.
        """
        result = self._call_unless_unknown("gettransactionheight", tx_hash)
        return None if result is _UNKNOWN else _int(result, "gettransactionheight")

    def _call_unless_unknown(self, method: str, tx_hash: str) -> Any:
        """``call``, or ``_UNKNOWN`` where the node does not know the transaction."""
        try:
            return self.call(method, [tx_hash])
        except RpcError as exc:
            if exc.code in (UNKNOWN_SCRIPT_CONTAINER, UNKNOWN_TRANSACTION):
                return _UNKNOWN
            raise


def _int(value: Any, method: str) -> int:
    # Big integers come as strings, small ones as numbers; bool is an int subclass.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RpcError(method, None, f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise RpcError(method, None, f"expected an integer, got {value!r}") from None


def _dict(value: Any, method: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RpcError(method, None, f"expected a JSON object, got {type(value).__name__}")
    return value
