"""Engine creation and schema migrations (Alembic, run programmatically)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from gateway.domain.errors import FailedPrecondition
from gateway.security.atrest import DataKeys

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode and a generous busy timeout."""
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, begin transactions (see _begin_immediate).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and
        # then writes fails at once (SQLITE_BUSY) when another writer went first,
        # instead of waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


#: What an operator is told when PostgreSQL runs without autovacuum.
AUTOVACUUM_OFF = (
    "PostgreSQL runs with autovacuum off: the outbox's published rows leave dead "
    "tuples only VACUUM removes, and the relay's claim of the next rows slows with "
    "them (14 ms to 2 s at 390,000 messages); turn autovacuum on, or VACUUM the "
    "outbox on a schedule"
)


def autovacuum_off(engine: Engine) -> bool:
    """Whether ``engine``'s database is a PostgreSQL running without autovacuum."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        return connection.exec_driver_sql("SHOW autovacuum").scalar() == "off"


def alembic_config(engine: Engine, data_keys: DataKeys | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    config.attributes["data_keys"] = data_keys
    return config


def upgrade(engine: Engine, revision: str = "head", *, data_keys: DataKeys | None = None) -> None:
    """Bring the schema to ``revision`` (idempotent). ``data_keys`` seal the
    personal data of a database made before encryption at rest (0004)."""
    command.upgrade(alembic_config(engine, data_keys), revision)
    if engine.dialect.name == "sqlite":
        # Old page versions (clear data before 0004) leave the write-ahead log.
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ``url`` (None for another database or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def claim_sqlite(url: str) -> IO[bytes] | None:
    """For a SQLite database, hold ``<file>.serve-lock`` exclusively for as long
    as the returned file stays open (the system drops it when the process
    dies, however it dies); None for other databases, which any number of
    gateways may share. Raises ``FailedPrecondition`` when another gateway
    process serves the file: SQLite is the embedded, single-process default."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database or ""
    path = Path(f"{database}.serve-lock")
    handle = path.open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "another process"
        handle.close()
        raise FailedPrecondition(
            "SQLITE_IN_USE",
            f"another gateway ({holder}) already serves the SQLite database {database}; "
            "SQLite allows one gateway process: run replicas on PostgreSQL "
            "(SILIAN_DATABASE_URL=postgresql+psycopg://…)",
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}".encode())
    handle.flush()
    return handle
