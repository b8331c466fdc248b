"""The database connection: URL parsing, engines and the one session context manager.

:class:`Database` is what the storage's other modules share: the engine for reads, the
engine for writes (``BEGIN IMMEDIATE`` on SQLite), and :meth:`Database.session`, the
only place that commits, rolls back and turns SQLAlchemy and driver errors into
:class:`~tuner.exceptions.StorageError`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from tuner.exceptions import (
    StorageError,
    StorageRefused,
    StorageUnavailable,
    StudyNotFoundError,
)

__all__ = ["Database", "error_class", "parse_storage_url", "reason"]

_log = logging.getLogger("tuner.storage")

URL_EXAMPLES = "sqlite:///tuner.db or postgresql://user@host:5432/db"
_SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_CONNECT_TIMEOUT_S = 10


def parse_storage_url(url: str) -> tuple[URL, URL]:
    """Check a storage URL without connecting.

    Returns:
        The URL as given, and the URL tuner connects with (driver chosen: pysqlite for
        SQLite, psycopg 3 for PostgreSQL).

    Raises:
        StorageError: the URL is empty, malformed, or not SQLite/PostgreSQL; the
            message shows valid examples, with any password masked.
    """
    if not isinstance(url, str) or not url.strip():
        raise StorageError(f"no database URL given (got {url!r}); use e.g. {URL_EXAMPLES}")
    try:
        given = make_url(url.strip())
    except (sa_exc.ArgumentError, ValueError):
        raise StorageError(
            f"malformed database URL {_mask_raw_url(url)!r}: use e.g. {URL_EXAMPLES}"
        ) from None
    backend, _, driver = given.drivername.partition("+")
    masked = given.render_as_string(hide_password=True)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StorageError(
                f"unsupported SQLite driver {driver!r} in {masked!r}: use e.g. {URL_EXAMPLES}"
            )
        if given.host or given.username or given.password or given.port:
            raise StorageError(
                f"malformed SQLite URL {masked!r}: a file is sqlite:///relative/path.db "
                f"or sqlite:////absolute/path.db; valid URLs look like {URL_EXAMPLES}"
            )
        return given, given.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg", "psycopg2"):
            raise StorageError(
                f"unsupported PostgreSQL driver {driver!r} in {masked!r}: tuner uses psycopg 3; "
                f"write the URL as postgresql://user@host:5432/db"
            )
        return given, given.set(drivername="postgresql+psycopg")
    raise StorageError(
        f"unsupported database URL {masked!r}: tuner stores studies in SQLite or "
        f"PostgreSQL, e.g. {URL_EXAMPLES}"
    )


def _mask_raw_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def reason(error: BaseException) -> str:
    """The driver's own message, on one line."""
    origin = getattr(error, "orig", None) or error
    message = str(origin) or type(origin).__name__
    if isinstance(origin, sa_exc.SQLAlchemyError) and origin is error:
        # SQLAlchemy appends the SQL and a link; the first line is the reason.
        message = message.split("\n", 1)[0]
        message = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", message)
    return " ".join(message.split())


def _set_wal(cursor: Any) -> None:
    """Switch a SQLite database to WAL, waiting out other processes that open it too.

    Switching a new database's journal needs it to itself for an instant; SQLite may
    answer "database is locked" at once, without waiting out the busy timeout, when
    another process opens (and migrates) the same new file at that moment.
    """
    import sqlite3

    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _quiet_rollback(session: Session) -> None:
    with contextlib.suppress(sa_exc.SQLAlchemyError):  # the connection is gone
        session.rollback()


class Database:
    """One database opened for tuner: its engines and its sessions.

    Args:
        url: a SQLite or PostgreSQL URL (see :func:`parse_storage_url`).
        read_only: open SQLite in ``mode=ro`` and PostgreSQL with
            ``default_transaction_read_only``; :meth:`session` refuses ``write=True``.

    Raises:
        StorageError: the URL is invalid or the driver cannot be loaded.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        given, target = parse_storage_url(url)
        self.masked_url = given.render_as_string(hide_password=True)
        self.read_only = read_only
        self.backend = target.get_backend_name()
        self._closed = False
        # Only the in-memory SQLite database shares one connection between threads.
        self.serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        try:
            self.engine = self._create_engine(target)
        except (sa_exc.SQLAlchemyError, ImportError, ValueError, TypeError) as e:
            raise StorageError(
                f"cannot open database {self.masked_url}: {reason(e)}; "
                f"valid URLs look like {URL_EXAMPLES}"
            ) from None
        # Connections of this engine begin with BEGIN IMMEDIATE on SQLite (see _on_begin).
        self.write_engine = self.engine.execution_options(tuner_write=True)

    def close(self) -> None:
        """Close every pooled connection; later sessions raise StorageError."""
        self._closed = True
        self.engine.dispose()

    def _create_engine(self, url: URL) -> Engine:
        if self.backend == "sqlite":
            return self._create_sqlite_engine(url)
        options = " ".join(
            o
            for o in (
                str(url.query.get("options", "")),
                "-c default_transaction_read_only=on" if self.read_only else "",
            )
            if o
        )
        connect_args: dict[str, Any] = {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        if options:
            connect_args["options"] = options
        return create_engine(
            url.difference_update_query(["options"]),
            connect_args=connect_args,
            pool_pre_ping=True,  # a restarted server costs one retry, not an error
        )

    def _create_sqlite_engine(self, url: URL) -> Engine:
        database = url.database or ""
        in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
        kwargs: dict[str, Any] = {}
        connect_args: dict[str, Any] = {"timeout": _SQLITE_BUSY_TIMEOUT_S}
        if in_memory:
            # One database per connection: every thread must share the one connection,
            # one call at a time.
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
            self.serial = threading.RLock()
        elif self.read_only:
            if str(url.query.get("uri", "")).lower() not in ("true", "1"):
                database = Path(database).absolute().as_uri()
            url = url.set(database=database).update_query_dict({"mode": "ro", "uri": "true"})
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        busy_ms = int(_SQLITE_BUSY_TIMEOUT_S * 1000)
        set_wal = not self.read_only and not in_memory

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # sqlite3's own transaction handling begins late and never for SELECT;
            # take it over so that every call is one real transaction (_on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if set_wal:
                # Readers (the dashboard) never block the writer and vice versa.
                _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A writer takes the write lock up front: a deferred transaction that reads
            # and then writes can fail at once with "database is locked" when another
            # process wrote in between, whatever the busy timeout.
            write = connection.get_execution_options().get("tuner_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextlib.contextmanager
    def session(self, doing: str, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any error.

        SQLAlchemy and driver errors become a one-line :class:`StorageError` that says
        what was being done (``doing``), where, and why.
        """
        if self._closed:
            raise StorageError(f"cannot {doing}: storage {self.masked_url} is closed")
        if write and self.read_only:
            raise StorageError(f"cannot {doing}: storage {self.masked_url} is open read-only")
        engine = self.write_engine if write else self.engine
        with self.serial:
            session = Session(bind=engine, autoflush=False, expire_on_commit=False)
            try:
                yield session
                session.commit()
            except sa_exc.SQLAlchemyError as e:
                _quiet_rollback(session)
                self.log_error(doing, e)
                raise error_class(e)(f"cannot {doing} in {self.masked_url}: {reason(e)}") from None
            except BaseException:
                _quiet_rollback(session)
                raise
            finally:
                session.close()

    def log_error(self, doing: str, error: BaseException) -> None:
        """Log a failure with the driver's full error, at debug level."""
        # The one-line StorageError is for users; the driver's full error is here.
        _log.debug("cannot %s in %s", doing, self.masked_url, exc_info=error)

    def not_found_by_id(self, study_id: int) -> StudyNotFoundError:
        """The error for a study id that is not in this database."""
        return StudyNotFoundError(
            f"no study with id {study_id} in {self.masked_url}: "
            "run `tuner list` to see the studies there"
        )

    def not_found_by_name(self, name: str) -> StudyNotFoundError:
        """The error for a study name that is not in this database."""
        return StudyNotFoundError(
            f"no study named {name!r} in {self.masked_url}: "
            "run `tuner list` to see the study names there"
        )


def error_class(error: sa_exc.SQLAlchemyError) -> type[StorageError]:
    """The storage error a driver error becomes, judged by its class, never its text:
    :class:`StorageUnavailable` when the database could not be reached (a lost or
    refused connection, a server going down, a lock or a pool time-out: DBAPI's
    OperationalError and InterfaceError are exactly those), else
    :class:`StorageRefused` (IntegrityError, DataError, ProgrammingError ...: the
    database refused the statement)."""
    return StorageUnavailable if _unreachable(error) else StorageRefused


def _unreachable(error: sa_exc.SQLAlchemyError) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    )
