"""Fixtures shared by the whole suite.

Storage: ``postgres_url`` is a throwaway PostgreSQL database for the test session;
``storage_url`` is a fresh, empty database for one test, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests._optional import missing

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _libpq_url(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL as libpq (psycopg.connect) takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end.

    The server is ``$TUNER_TEST_POSTGRES`` or postgresql://postgres@127.0.0.1:5432/test.
    Unreachable: the tests using it fail where ``CI=true``, else they are skipped.
    """
    server = os.environ.get("TUNER_TEST_POSTGRES", POSTGRES_DEFAULT)
    try:
        admin = psycopg.connect(_libpq_url(server), autocommit=True, connect_timeout=5)
    except psycopg.Error as e:
        message = f"PostgreSQL at {make_url(server)} is unreachable: {' '.join(str(e).split())}"
        missing(message)
    name = f"tuner_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database that no other test sees.

    SQLite: a new file in ``tmp_path``. PostgreSQL: a new schema in the session's
    database, selected through the connection's ``search_path``.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@contextmanager
def postgres_schema(database: str, prefix: str = "test") -> Iterator[str]:
    """A new schema in `database`, dropped on exit; yields a URL whose connections use
    it (through the connection's ``search_path``)."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq_url(database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(_libpq_url(database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray for the whole test session (starting one costs seconds)."""
    from tuner._ray import ensure_ray

    ensure_ray(None)
    yield


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tuner.db'}"
