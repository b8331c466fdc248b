"""Alembic migrations of tuner's schema, applied by :class:`tuner.storage.Storage` on open."""
