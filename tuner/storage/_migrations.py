"""Alembic migrations, applied when a storage opens a database that is behind."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from tuner.exceptions import StorageError
from tuner.storage._engine import Database, error_class, reason

__all__ = ["prepare_schema"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# Serialises concurrent first opens of one PostgreSQL database ("tuner" in ASCII).
_PG_MIGRATION_LOCK = 0x74756E6572


def prepare_schema(db: Database) -> None:
    """Bring the database's tables to the newest revision, or say why not.

    Raises:
        StorageError: the database cannot be reached; its schema is newer than this
            tuner; or (read-only) it has no tuner tables or an older schema.
    """
    from alembic.runtime.migration import MigrationContext

    head, known = _revisions()
    try:
        with db.serial, db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except sa_exc.SQLAlchemyError as e:
        db.log_error("open", e)
        raise error_class(e)(f"cannot open database {db.masked_url}: {reason(e)}") from None
    if current == head:
        return
    if current is not None and current not in known:
        raise StorageError(
            f"database {db.masked_url} has schema revision {current!r}, which this "
            f"version of tuner does not know (it needs {head!r}): upgrade tuner"
        )
    if db.read_only:
        if current is None:
            raise StorageError(
                f"database {db.masked_url} has no tuner tables (empty, or another "
                "application's database): open it once without read_only, e.g. by "
                "running a study with this storage, to create them"
            )
        raise StorageError(
            f"database {db.masked_url} has schema revision {current!r} and this "
            f"tuner needs {head!r}: open it once without read_only to upgrade it"
        )
    _migrate(db, head)


def _migrate(db: Database, head: str) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    try:
        with db.serial, db.write_engine.begin() as connection:
            if db.backend == "postgresql":
                # Two processes opening a new database at once: one migrates, the
                # other waits and then finds the schema current.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            if MigrationContext.configure(connection).get_current_revision() == head:
                return
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa_exc.SQLAlchemyError as e:
        db.log_error("migrate", e)
        raise error_class(e)(
            f"cannot create or upgrade tuner's tables in {db.masked_url}: {reason(e)}"
        ) from None


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head revision of tuner's migrations and every revision they know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StorageError(f"tuner's migrations are missing from {_MIGRATIONS}")
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return head, known
