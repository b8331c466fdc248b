"""The database a command uses when none is named: one definition for the library, the
CLI (whose ``--help`` shows it) and the dashboard.

Kept free of heavy imports (no SQLAlchemy, no pydantic) so that ``tuner --help`` stays
quick.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_STORAGE", "STORAGE_ENV", "default_storage_url"]

DEFAULT_STORAGE = "sqlite:///tuner.db"
"""A SQLite file in the current folder."""

STORAGE_ENV = "TUNER_STORAGE"
"""The environment variable that overrides :data:`DEFAULT_STORAGE`."""


def default_storage_url() -> str:
    """The database when neither an option nor the spec names one: ``$TUNER_STORAGE``
    if set and not empty, else :data:`DEFAULT_STORAGE`."""
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
