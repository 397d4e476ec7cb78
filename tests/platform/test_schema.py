"""db/schema.sql (+ migrations) and the SQLAlchemy models describe the same database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from neosl import migrate
from neosl.config import Settings
from neosl.models import Base


def test_models_match_the_database_built_from_sql(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": lambda obj, name, type_, *_: name != "schema_migrations",
            },
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_index_and_check_constraint_names_match(engine: Engine) -> None:
    # Alembic skips expression indexes and CHECK constraints; compare their names here.
    with engine.connect() as conn:
        db_indexes = {
            (r.tablename, r.indexname)
            for r in conn.execute(
                text("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public'")
            )
            if r.tablename != "schema_migrations"
        }
        db_checks = {
            (r.table, r.name)
            for r in conn.execute(
                text(
                    "SELECT conrelid::regclass::text AS table, conname AS name FROM pg_constraint"
                    " WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
                )
            )
        }
    model_indexes = set()
    model_checks = set()
    for table in Base.metadata.sorted_tables:
        model_indexes |= {(table.name, str(ix.name)) for ix in table.indexes}
        model_indexes.add((table.name, f"{table.name}_pkey"))
        for c in table.constraints:
            kind = type(c).__name__
            if kind == "UniqueConstraint":
                model_indexes.add((table.name, str(c.name)))
            elif kind == "CheckConstraint":
                model_checks.add((table.name, str(c.name)))
    assert db_indexes == model_indexes
    assert db_checks == model_checks


def test_api_keys_are_stored_as_sha256_only(engine: Engine) -> None:
    with engine.connect() as conn:
        cols: dict[str, int | None] = dict(
            conn.execute(
                text(
                    "SELECT column_name, character_maximum_length FROM information_schema.columns"
                    " WHERE table_name = 'users'"
                )
            ).all()
        )
    assert "api_key" not in cols
    assert cols["api_key_hash"] == 64


def test_upgrade_is_idempotent_and_recorded(engine: Engine, settings: Settings) -> None:
    assert migrate.upgrade(engine, settings.db_dir) == []
    rows = migrate.status(engine, settings.db_dir)
    assert rows[0] == ("0000", "schema", True)
    assert all(applied for *_, applied in rows)


@pytest.fixture
def scratch_engine(engine: Engine) -> Iterator[tuple[Engine, str]]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP DATABASE IF EXISTS neosl_test_scratch"))
        conn.execute(text("CREATE DATABASE neosl_test_scratch"))
    url = engine.url.set(database="neosl_test_scratch")
    scratch = create_engine(url)
    yield scratch, "neosl_test_scratch"
    scratch.dispose()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP DATABASE IF EXISTS neosl_test_scratch"))


def _db_dir(tmp_path: Path, repo_root: Path, *migrations: tuple[str, str]) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "schema.sql").write_text((repo_root / "db" / "schema.sql").read_text())
    for name, sql in migrations:
        (tmp_path / "migrations" / name).write_text(sql)
    return tmp_path


def test_numbered_migrations_apply_in_order_once(
    scratch_engine: tuple[Engine, str], tmp_path: Path, repo_root: Path
) -> None:
    scratch, _ = scratch_engine
    db_dir = _db_dir(
        tmp_path,
        repo_root,
        ("0002_second.sql", "ALTER TABLE probe ADD COLUMN b INT;"),
        ("0001_first.sql", "CREATE TABLE probe (a INT);"),
    )
    assert migrate.upgrade(scratch, db_dir) == ["0000", "0001", "0002"]
    assert migrate.upgrade(scratch, db_dir) == []
    with scratch.connect() as conn:
        cols = conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'probe'")
        ).scalars()
        assert sorted(cols) == ["a", "b"]


def test_edited_applied_migration_is_refused(
    scratch_engine: tuple[Engine, str], tmp_path: Path, repo_root: Path
) -> None:
    scratch, _ = scratch_engine
    db_dir = _db_dir(tmp_path, repo_root, ("0001_first.sql", "CREATE TABLE probe (a INT);"))
    migrate.upgrade(scratch, db_dir)
    (db_dir / "migrations" / "0001_first.sql").write_text("CREATE TABLE probe (a BIGINT);")
    with pytest.raises(migrate.MigrationError, match=r"0001 .* has changed"):
        migrate.upgrade(scratch, db_dir)


def test_failing_migration_leaves_nothing_half_applied(
    scratch_engine: tuple[Engine, str], tmp_path: Path, repo_root: Path
) -> None:
    scratch, _ = scratch_engine
    db_dir = _db_dir(
        tmp_path, repo_root, ("0001_bad.sql", "CREATE TABLE probe (a INT); SELECT nonsense;")
    )
    with pytest.raises(Exception, match="nonsense"):
        migrate.upgrade(scratch, db_dir)
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('probe')")).scalar() is None
        versions = conn.execute(text("SELECT version FROM schema_migrations")).scalars().all()
    assert versions == ["0000"]


def test_misnamed_or_duplicate_migration_files_are_refused(tmp_path: Path, repo_root: Path) -> None:
    (tmp_path / "a").mkdir()
    bad = _db_dir(tmp_path / "a", repo_root, ("1_x.sql", ""))
    with pytest.raises(migrate.MigrationError, match="NNNN_lower_snake"):
        migrate.discover(bad)
    (tmp_path / "b").mkdir()
    dup = _db_dir(tmp_path / "b", repo_root, ("0001_a.sql", ""), ("0001_b.sql", ""))
    with pytest.raises(migrate.MigrationError, match="used twice"):
        migrate.discover(dup)


def test_concurrent_upgrades_apply_once(
    scratch_engine: tuple[Engine, str], repo_root: Path
) -> None:
    scratch, _ = scratch_engine
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate.upgrade(scratch, repo_root / "db"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every_version = [m.version for m in migrate.discover(repo_root / "db")]
    assert sorted(results, key=len) == [[], [], [], every_version]
