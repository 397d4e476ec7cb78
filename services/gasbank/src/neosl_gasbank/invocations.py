"""Contract calls the service relays for tenants: built, priced and signed, not sent.

A relayed transaction has two signers:

1. the service's hot wallet, first, so it is the sender and pays the system and network
   fees, with ``WitnessScope.NONE``: its signature pays and authorizes nothing else, so a
   tenant's call can never move the hot wallet's GAS or pass a ``CheckWitness`` of it;
2. the tenant's own signer, with ``CalledByEntry``: the tenant's contract sees
   ``CheckWitness(signer)`` pass when the transaction's script calls it directly, and not
   in contracts that contract calls in turn (a wider scope would let any contract the call
   reaches act as the tenant).

The tenant's signer never needs GAS of its own.

One kind of call has no tenant signer: a price round published to the service's own
PriceFeed contract, whose publisher is the hot wallet. There the hot wallet is the only
signer, with ``CalledByEntry`` (``signer=None``), so ``CheckWitness(publisher)`` passes in the
PriceFeed contract the script calls. Only scripts the service builds itself are signed that
way, never a tenant's call.

Building test-invokes the script with its signers first: anything but HALT raises
``InvocationWouldFail`` with the VM's exception, and nothing is signed. The system fee is what
the test invocation consumed; the network fee is priced by the node from witnesses of the
right shape (sign, price, sign again).
"""

from __future__ import annotations

from collections.abc import Sequence

from neo3.core.types import UInt160
from neo3.network.payloads.transaction import Transaction
from neo3.network.payloads.verification import Signer, WitnessScope
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account

from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import SignedTransfer, signed_transaction


class InvocationWouldFail(Exception):
    """The call cannot succeed (its test invocation did not HALT); nothing was signed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def call_script(contract: str, method: str, args: Sequence[object]) -> bytes:
    """The script of one contract call (``args`` as ``neosl.neo.params.to_python`` gives)."""
    return (
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(
            UInt160.from_string(contract.removeprefix("0x")), method, list(args)
        )
        .to_array()
    )


def build_invocation(
    rpc: NeoRpc,
    payer: Account,
    signer: Account | None,
    script: bytes,
    *,
    valid_for_blocks: int,
) -> SignedTransfer:
    """Test-invoke, price and sign ``script`` paid by ``payer`` and witnessed by ``signer``
    (``None``: by the payer itself, for the service's own calls; see the module docstring).

    Raises:
        InvocationWouldFail: the test invocation did not HALT (FAULT: its exception).
        RpcError, RpcUnavailable: from the node.
    """
    payer_hash = address_to_script_hash(str(payer.address))
    accounts = [payer] if signer is None else [payer, signer]
    signers = (
        [Signer(payer_hash, WitnessScope.CALLED_BY_ENTRY)]
        if signer is None
        else [
            Signer(payer_hash, WitnessScope.NONE),
            Signer(address_to_script_hash(str(signer.address)), WitnessScope.CALLED_BY_ENTRY),
        ]
    )
    test = rpc.invoke_script(
        script,
        [
            {
                "account": f"0x{s.account}",
                "scopes": "CalledByEntry" if s.scope == WitnessScope.CALLED_BY_ENTRY else "None",
            }
            for s in signers
        ],
    )
    if test.get("state") != "HALT":
        raise InvocationWouldFail(
            f"the test invocation ended in {test.get('state') or 'no state'}: "
            f"{test.get('exception') or 'no reason given'}"
        )

    def sign(tx: Transaction, magic: int) -> None:
        # Witnesses in the order of the signers.
        for account in accounts:
            account.sign_tx(tx, magic)

    tx = signed_transaction(
        rpc,
        payer_hash,
        sign,
        script,
        system_fee=max(int(test["gasconsumed"]), 1),
        valid_for_blocks=valid_for_blocks,
        signers=signers,
    )
    return SignedTransfer.of(tx)
