"""Apply db/schema.sql and the numbered files in db/migrations/, each exactly once.

Versions are recorded in ``schema_migrations`` with a checksum, so an applied file that
is later edited is reported instead of silently diverging. An advisory lock lets several
processes (the dev stack, tests, a deploy job) call ``upgrade`` at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

import neosl

BASELINE_VERSION = "0000"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every process of this application.
_LOCK_KEY = 0x4E534C_4D4947


class MigrationError(RuntimeError):
    """The migration files are inconsistent with what the database has recorded."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_db_dir() -> Path:
    # shared/src/neosl/__init__.py -> the repository root holds db/.
    return Path(neosl.__file__).resolve().parents[3] / "db"


def discover(db_dir: Path | None = None) -> list[Migration]:
    """The baseline schema followed by the numbered migrations, in order.

    Raises:
        MigrationError: a file is missing, misnamed, or two share a number.
    """
    db_dir = db_dir or default_db_dir()
    schema = db_dir / "schema.sql"
    if not schema.is_file():
        raise MigrationError(
            f"{schema} not found (set NSL_DB_DIR to the folder holding schema.sql)"
        )
    found = [Migration(BASELINE_VERSION, "schema", schema.read_text())]
    seen = {BASELINE_VERSION}
    mdir = db_dir / "migrations"
    for path in sorted(mdir.glob("*.sql")) if mdir.is_dir() else []:
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version = match.group(1)
        if version in seen:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        seen.add(version)
        found.append(Migration(version, path.stem, path.read_text()))
    return found


def _ensure_table(conn: Connection) -> None:
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " checksum CHAR(64) NOT NULL,"
            " applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())"
        )
    )


def upgrade(engine: Engine, db_dir: Path | None = None) -> list[str]:
    """Apply every migration not yet recorded; return the versions applied now.

    Each file runs in its own transaction together with its record, so a failing file
    leaves the database as it was before that file.

    Raises:
        MigrationError: an applied file has changed since, or a file is malformed.
    """
    migrations = discover(db_dir)
    applied_now: list[str] = []
    with engine.connect() as conn:
        # Session-level lock: it outlives the transactions below until unlocked.
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            _ensure_table(conn)
            recorded = {
                row.version: row.checksum
                for row in conn.execute(text("SELECT version, checksum FROM schema_migrations"))
            }
        try:
            for m in migrations:
                if m.version in recorded:
                    if recorded[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version} ({m.name}) was applied and has changed since; "
                            "add a new numbered migration instead of editing an applied one"
                        )
                    continue
                with conn.begin():
                    conn.exec_driver_sql(m.sql)
                    conn.execute(
                        text(
                            "INSERT INTO schema_migrations (version, name, checksum)"
                            " VALUES (:v, :n, :c)"
                        ),
                        {"v": m.version, "n": m.name, "c": m.checksum},
                    )
                applied_now.append(m.version)
        finally:
            with conn.begin():
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    return applied_now


def status(engine: Engine, db_dir: Path | None = None) -> list[tuple[str, str, bool]]:
    """(version, name, applied?) for every migration file."""
    with engine.connect() as conn:
        with conn.begin():
            _ensure_table(conn)
        recorded = {r.version for r in conn.execute(text("SELECT version FROM schema_migrations"))}
    return [(m.version, m.name, m.version in recorded) for m in discover(db_dir)]
