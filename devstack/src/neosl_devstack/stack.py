"""The servers behind the application: embedded ones for whatever the environment leaves unset.

``DATABASE_URL``, ``REDIS_URL`` and ``NEO_RPC_URL`` (or ``NEO_RPC_URLS``) name real servers;
for each one unset, an embedded server is started with its data under the stack's folder.
The same code serves ``make dev`` (durable data under ``.dev/``) and the test suite
(throw-away data, random ports).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from neo3.wallet.account import Account

from neosl.config import new_key
from neosl.onchain.relaybox import new_relay_key
from neosl.pricefeeds.reports import new_report_key
from neosl_devstack.datadir import SECRETS_FILE, read_secrets
from neosl_devstack.neo import EmbeddedNeo, committee_wallet_file
from neosl_devstack.postgres import EmbeddedPostgres
from neosl_devstack.redis import EmbeddedRedis
from neosl_devstack.servers import ManagedServer, free_port


@dataclass(frozen=True)
class Ports:
    postgres: int
    redis: int
    neo_rpc: int
    neo_p2p: int

    @classmethod
    def dev(cls, env: Mapping[str, str]) -> Ports:
        return cls(
            postgres=int(env.get("NSL_DEV_PG_PORT", "55432")),
            redis=int(env.get("NSL_DEV_REDIS_PORT", "56379")),
            neo_rpc=int(env.get("NSL_DEV_NEO_RPC_PORT", "50332")),
            neo_p2p=int(env.get("NSL_DEV_NEO_P2P_PORT", "50333")),
        )

    @classmethod
    def random(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


@dataclass
class Stack:
    root: Path
    ports: Ports
    durable: bool = True
    database: str = "neosl"
    neo_block_ms: int = 1000
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    servers: list[ManagedServer] = field(default_factory=list)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    neo: EmbeddedNeo | None = None
    # The application's environment once start() returned: the caller's plus what it added.
    started_env: dict[str, str] = field(default_factory=dict)

    @property
    def neo_dir(self) -> Path:
        return self.root / "neo"

    @property
    def committee_wallet_path(self) -> Path:
        """The embedded node's committee wallet (the dev chain's faucet), absolute."""
        return committee_wallet_file(self.neo_dir)

    def start(self) -> dict[str, str]:
        """Start the embedded servers needed; return the variables the application needs.

        Raises:
            ServerError: a server did not start (the ones already started are stopped).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        out = dict(self.secrets())
        try:
            if not self.env.get("DATABASE_URL"):
                self.postgres = EmbeddedPostgres(
                    self.root / "postgres", self.ports.postgres, durable=self.durable
                )
                self._start(self.postgres)
                out["DATABASE_URL"] = self.postgres.ensure_database(self.database)
            if not self.env.get("REDIS_URL"):
                self.redis = EmbeddedRedis(
                    self.root / "redis", self.ports.redis, durable=self.durable
                )
                self._start(self.redis)
                out["REDIS_URL"] = self.redis.url
            if not (self.env.get("NEO_RPC_URL") or self.env.get("NEO_RPC_URLS")):
                self.neo = EmbeddedNeo(
                    self.neo_dir,
                    self.ports.neo_rpc,
                    self.ports.neo_p2p,
                    block_ms=self.neo_block_ms,
                    durable=self.durable,
                )
                self._start(self.neo)
                out["NEO_RPC_URL"] = self.neo.url
        except BaseException:
            self.stop()
            raise
        return out

    def _start(self, server: ManagedServer) -> None:
        server.start()
        self.servers.append(server)

    def stop(self) -> None:
        """Stop every server this stack started, last started first."""
        while self.servers:
            self.servers.pop().stop()

    def secrets(self) -> dict[str, str]:
        """Keys the environment does not set, generated once and kept in ``root``.

        Only the dev stack and tests have default secrets; production must set them.
        A file from an older version gains the keys it lacks; existing ones never change.
        """
        path = self.root / SECRETS_FILE
        stored = read_secrets(self.root)
        missing = {k: v for k, v in _new_secrets().items() if k not in stored}
        if "NSL_HOT_WALLET_WIF" in stored:
            missing.pop("NSL_DEPOSIT_ADDRESS", None)
        if missing:
            stored.update(missing)
            path.write_text("".join(f"{k}={v}\n" for k, v in stored.items()))
            path.chmod(0o600)
        return {k: v for k, v in stored.items() if not self.env.get(k)}


def _new_secrets() -> dict[str, str]:
    # The hot wallet: a fresh key per dev stack; deposits arrive at its address.
    private_key = secrets.token_bytes(32)
    relay_private, relay_public = new_relay_key()
    return {
        "NSL_SECRET_KEY": new_key(),
        "NSL_SECRETS_KEY": new_key(),
        "NSL_HOT_WALLET_WIF": Account.private_key_to_wif(private_key),
        "NSL_DEPOSIT_ADDRESS": Account.from_private_key(private_key).address,
        # The relay's key seals tenants' signer keys; in production only the gasbank
        # gets NSL_RELAY_KEY, the rest NSL_RELAY_PUBLIC_KEY.
        "NSL_RELAY_KEY": relay_private,
        "NSL_RELAY_PUBLIC_KEY": relay_public,
        # Signs price rounds' reports (the pricefeed worker's).
        "NSL_REPORT_KEY": new_report_key(),
    }
