"""``neosl devnet …``: the dev chain's faucet, contract deployment and wallet stand-ins.

Registered on the ``neosl`` command through the ``neosl.commands`` entry point, so the
command has them wherever the dev stack is installed and production images do not.
Every ``neosl`` command loads this module to build its parser, so each command imports
neo-mamba, the RPC client and the API's message signing only when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neosl.gas.money import InvalidAmount, format_amount, from_units, parse_amount, to_units
from neosl_devstack import contracts

if TYPE_CHECKING:
    from neosl.config import Settings


def _address_and_amount(args: argparse.Namespace) -> tuple[str, int] | None:
    """The command's address and GAS amount (in units), or None after saying what is wrong."""
    from neosl.neo.addresses import InvalidAddress, validate_address

    try:
        return validate_address(args.address), to_units(parse_amount(args.amount))
    except (InvalidAmount, InvalidAddress) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _committee_wallet() -> tuple[Path, str] | None:
    """The dev chain's committee wallet and its password, or None after saying what is wrong."""
    # `neosl-dev env` exports the wallet's absolute path; the default only works from the
    # repository's root, where `make dev` keeps the dev stack's data.
    wallet_var = os.environ.get("NSL_DEVNET_WALLET")
    wallet = Path(wallet_var or ".dev/neo/committee-wallet.json").resolve()
    if not wallet.is_file():
        where = "from NSL_DEVNET_WALLET" if wallet_var else "NSL_DEVNET_WALLET is unset"
        print(
            f"error: no committee wallet at {wallet} ({where}). Start the dev stack with "
            '`make dev`, then in the repository run `eval "$(neosl-dev env)"` to export '
            "NSL_DEVNET_WALLET (or set it to the wallet's path) and try again.",
            file=sys.stderr,
        )
        return None
    password = os.environ.get("NSL_DEVNET_WALLET_PASSWORD")
    if password is None:
        password_file = wallet.with_suffix(".password")
        if not password_file.is_file():
            print(
                f"error: no {password_file} next to the wallet; set NSL_DEVNET_WALLET_PASSWORD",
                file=sys.stderr,
            )
            return None
        password = password_file.read_text().strip()
    return wallet, password


def _devnet_fund(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
    from neosl.neo.transfers import TransferWouldFail
    from neosl_devstack import devnet

    parsed = _address_and_amount(args)
    if parsed is None:
        return 2
    address, amount = parsed
    committee = _committee_wallet()
    if committee is None:
        return 2
    wallet, password = committee
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        try:
            tx_hash = devnet.fund(rpc, wallet, password, address, amount)
        except (
            RpcError,
            RpcUnavailable,
            TransferWouldFail,
            RuntimeError,
            OSError,
            ValueError,  # not a wallet, or the wrong password
        ) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"sent {format_amount(from_units(amount))} GAS to {address} in {tx_hash}")
    return 0


def _devnet_deploy(settings: Settings, args: argparse.Namespace) -> int:
    from neosl.neo import params
    from neosl.neo.addresses import address_to_script_hash
    from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
    from neosl_devstack import devnet

    if args.owner is not None and args.data is not None:
        print("error: give --owner or --data, not both", file=sys.stderr)
        return 2
    try:
        nef, manifest = contracts.load(args.contract)
        data: devnet.DeployData = None if args.owner is None else address_to_script_hash(args.owner)
        if args.data is not None:
            (data,) = params.to_python(params.parse_args([json.loads(args.data)]))
    except params.ParamError as exc:
        print(f"error: --data: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: --data is not JSON: {exc}", file=sys.stderr)
        return 2
    except (contracts.UnknownContract, OSError, ValueError) as exc:  # InvalidAddress too
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.name is not None:
        manifest = {**manifest, "name": args.name}
    committee = _committee_wallet()
    if committee is None:
        return 2
    wallet, password = committee
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        try:
            contract_hash = devnet.deploy(rpc, wallet, password, nef, manifest, data)
        except devnet.ContractExists as exc:
            print(
                f"error: {exc}; deploy it again under another name with --name NAME",
                file=sys.stderr,
            )
            return 1
        except (
            RpcError,
            RpcUnavailable,
            devnet.DeployWouldFail,
            RuntimeError,
            OSError,
            ValueError,  # not a wallet, the wrong password or not a .nef
        ) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.data is not None:
        print(f"deployed {manifest['name']!r} with data {args.data}:", file=sys.stderr)
    else:
        owner_text = args.owner or "the committee account"
        print(f"deployed {manifest['name']!r}, owner {owner_text}:", file=sys.stderr)
    print(contract_hash)
    return 0


def _devnet_keygen(_settings: Settings, _args: argparse.Namespace) -> int:
    from neo3.wallet.account import Account

    private_key = secrets.token_bytes(32)
    print(f"address {Account.from_private_key(private_key).address}")
    print(f"wif     {Account.private_key_to_wif(private_key)}")
    print("A throw-away key for the dev chain; keep real keys out of shells and logs.")
    return 0


def _devnet_sign_message(_settings: Settings, args: argparse.Namespace) -> int:
    from neosl_api.messages import sign_message

    try:
        signed = sign_message(args.wif, args.message, args.salt)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(signed.as_dict()))
    return 0


def _devnet_send(settings: Settings, args: argparse.Namespace) -> int:
    from neo3.wallet.account import Account

    from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
    from neosl.neo.transfers import TransferWouldFail, build_gas_transfer, transfer_succeeded

    wif = os.environ.get("NSL_DEVNET_SENDER_WIF", "")
    if not wif:
        print("error: set NSL_DEVNET_SENDER_WIF to the sender's WIF key", file=sys.stderr)
        return 2
    parsed = _address_and_amount(args)
    if parsed is None:
        return 2
    address, amount = parsed
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        try:
            signed = build_gas_transfer(rpc, wif, address, amount, valid_for_blocks=100)
            rpc.send_raw_transaction(signed.raw)
            log = rpc.wait_for_application_log(signed.tx_hash, timeout=60)
        except (RpcError, RpcUnavailable, TransferWouldFail, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if log is None or not transfer_succeeded(log, Account.from_wif(wif).address, address, amount):
        print(f"error: {signed.tx_hash} did not succeed on chain", file=sys.stderr)
        return 1
    print(f"sent {format_amount(from_units(amount))} GAS to {address} in {signed.tx_hash}")
    return 0


def register(commands: Any) -> None:
    """Add ``devnet`` to the ``neosl`` command's subcommands (``commands``)."""
    devnet_cmd = commands.add_parser("devnet", help="the development chain").add_subparsers(
        dest="action", required=True
    )
    fund = devnet_cmd.add_parser(
        "fund", help="send GAS from the dev chain's committee account (NSL_DEVNET_WALLET)"
    )
    fund.add_argument("address")
    fund.add_argument("amount", help='GAS, e.g. "10" or "0.5"')
    fund.set_defaults(func=_devnet_fund)
    deploy_help = (
        "deploy a contract from the dev chain's committee account (NSL_DEVNET_WALLET) and "
        "print its hash"
    )
    deploy = devnet_cmd.add_parser("deploy", help=deploy_help, description=deploy_help)
    deploy.add_argument(
        "contract",
        metavar="CONTRACT",
        help=f"a shipped contract ({', '.join(contracts.names())}) or a path to a .nef file "
        "with its .manifest.json next to it",
    )
    deploy.add_argument(
        "--owner",
        metavar="ADDRESS",
        help="passed to the contract's _deploy as a Hash160; without it the project's "
        "contracts make the deployer (the committee account) their owner",
    )
    deploy.add_argument(
        "--data",
        metavar="JSON",
        help="the deploy data as one JSON value, typed as function arguments are, e.g. "
        '\'[{"$neo": "Hash160", "value": "0x…"}, 1]\' for the price consumer',
    )
    deploy.add_argument(
        "--name",
        help="the manifest name to deploy under; the hash depends on it, so a contract can "
        "be deployed again under another name",
    )
    deploy.set_defaults(func=_devnet_deploy)
    devnet_cmd.add_parser(
        "keygen", help="print a new throw-away key (address and WIF)"
    ).set_defaults(func=_devnet_keygen)
    sign_help = (
        "sign MESSAGE as a Neo wallet would and print the body of POST /v1/gas/accounts "
        "(a dev-chain convenience: the key is on the command line, so use throw-away keys only)"
    )
    sign_msg = devnet_cmd.add_parser("sign-message", help=sign_help, description=sign_help)
    sign_msg.add_argument("wif", metavar="WIF", help="throw-away dev-chain key (devnet keygen)")
    sign_msg.add_argument("message", metavar="MESSAGE", help="the challenge text to sign")
    sign_msg.add_argument("--salt", help="text the wallet puts in front of the message")
    sign_msg.set_defaults(func=_devnet_sign_message)
    send = devnet_cmd.add_parser(
        "send", help="send GAS from the key in NSL_DEVNET_SENDER_WIF (e.g. to deposit)"
    )
    send.add_argument("address")
    send.add_argument("amount", help='GAS, e.g. "2.5"')
    send.set_defaults(func=_devnet_send)
