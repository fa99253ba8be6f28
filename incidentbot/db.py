"""The database: engine set-up per dialect, sessions, and migrations on start.

SQLite runs in WAL mode with a busy timeout; write transactions begin with ``BEGIN IMMEDIATE`` so
two writers never deadlock upgrading a read lock. PostgreSQL needs nothing special.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

__all__ = ["Database", "SchemaAheadError", "make_engine"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaAheadError(RuntimeError):
    """The database was migrated by a newer incidentbot than this one."""


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (pysqlite's own
            # handling would defer BEGIN and break BEGIN IMMEDIATE).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


class Database:
    """An engine plus the two kinds of session the services use."""

    def __init__(self, url: str, *, engine: Engine | None = None):
        self.url = url
        self.engine = engine or make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def health(self) -> str:
        """``up``; ``read-only`` when reads work but writes would be refused (SQLite's query_only,
        a PostgreSQL standby or default_transaction_read_only); or ``down``."""
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    read_only = bool(conn.exec_driver_sql("PRAGMA query_only").scalar())
                else:
                    read_only = conn.exec_driver_sql("SELECT current_setting('transaction_read_only')").scalar() == "on"
            return "read-only" if read_only else "up"
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            log.warning("database health check failed", exc_info=True)
            return "down"

    # -- migrations ----------------------------------------------------------------------

    def _alembic_config(self):
        # Alembic loads only to migrate: the workers of `serve --workers N` and `migrate=False` runtimes never do.
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        return cfg

    def migrate(self) -> None:
        """Upgrade to the newest schema, or refuse clearly when the database is ahead of this code."""
        # Alembic loads only to migrate (see _alembic_config).
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = self._alembic_config()
        script = ScriptDirectory.from_config(cfg)
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = [rev for rev in current if rev not in known]
        if unknown:
            raise SchemaAheadError(
                f"the database schema is at revision {', '.join(unknown)}, which this incidentbot does not know: "
                "it was migrated by a newer version. Run that version, or restore a backup taken before the upgrade."
            )
        if self.is_sqlite:
            command.upgrade(cfg, "head")
            return
        # Replicas starting together on an old schema: one migrates, the others wait for it and
        # then find nothing to do.
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(7317001)"))
            try:
                command.upgrade(cfg, "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7317001)"))
                conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
