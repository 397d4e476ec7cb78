"""Optional: PostgreSQL and Redis from Docker containers (NSL_TESTCONTAINERS=1).

Only used when asked for and a Docker engine answers; the embedded servers are the
default and the only path CI relies on. Needs the `testcontainers` package installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

_started: list[Any] = []


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    result = subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False)
    return result.returncode == 0


def start_if_requested() -> dict[str, str]:
    if os.environ.get("NSL_TESTCONTAINERS") != "1" or not _docker_answers():
        return {}
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    env: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        pg = PostgresContainer("postgres:16-alpine", dbname="neosl_test", driver="psycopg")
        pg.start()
        _started.append(pg)
        env["DATABASE_URL"] = pg.get_connection_url()
    if not os.environ.get("REDIS_URL"):
        rc = RedisContainer("redis:7-alpine")
        rc.start()
        _started.append(rc)
        host, port = rc.get_container_host_ip(), rc.get_exposed_port(6379)
        env["REDIS_URL"] = f"redis://{host}:{port}/0"
    return env


def stop() -> None:
    while _started:
        _started.pop().stop()
