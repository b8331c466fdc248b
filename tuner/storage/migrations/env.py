"""Alembic environment: runs on the connection that :class:`~tuner.storage.Storage` passes.

There is no alembic.ini: the storage builds the ``Config`` in code and puts an open
connection in ``config.attributes["connection"]``. Logging is left as the application
configured it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tuner.storage._models import Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "tuner's migrations run through tuner.storage.Storage, which passes a connection"
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copy-and-move; batch mode does that for later migrations.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("tuner's migrations run online only (through tuner.storage.Storage)")
run_migrations_online()
