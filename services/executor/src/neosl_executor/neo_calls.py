"""``neo.call`` for functions: a read-only test invocation through the configured RPC nodes.

The executor holds no key: a call is an ``invokefunction`` without signers, so it can read
contracts but never act. The result stack is decoded by the one decoder
(``neosl.neo.stack``): a single item is the call's value, several are a list, none is null.
"""

from __future__ import annotations

import json

from neosl.errors import InvalidInput
from neosl.functions.sandbox.pool import NeoCallError
from neosl.neo import params, stack
from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
from neosl.onchain.actions import check_target


class NeoReader:
    """A ``NeoCaller`` for ``SandboxPool`` (thread-safe: the RPC client is)."""

    def __init__(self, rpc: NeoRpc) -> None:
        self.rpc = rpc

    def __call__(self, contract: str, method: str, args: object) -> str:
        """Raises:
        NeoCallError: the message the function's promise rejects with.
        """
        try:
            contract, method = check_target(contract, method)
            parsed = params.parse_args(args)
        except (InvalidInput, params.ParamError) as exc:
            raise NeoCallError(f"neo.call: {_message(exc)}") from None
        try:
            result = self.rpc.invoke_function(contract, method, params.to_rpc(parsed))
        except RpcUnavailable:
            raise NeoCallError("neo.call: no Neo node answered") from None
        except RpcError as exc:
            raise NeoCallError(f"neo.call: the node refused the call: {exc.message}") from None
        if result.get("state") != "HALT":
            raise NeoCallError(
                f"neo.call: {contract}.{method} ended in {result.get('state') or 'no state'}: "
                f"{result.get('exception') or 'no reason given'}"
            )
        try:
            values = stack.decode_stack(result.get("stack") or [])
        except stack.StackError as exc:
            raise NeoCallError(f"neo.call: the result cannot be read: {exc}") from None
        value = values[0] if len(values) == 1 else (values or None)
        return json.dumps(value)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, InvalidInput) else str(exc)
