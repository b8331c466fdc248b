"""SQLAlchemy models of tuner's tables; docs/storage.md explains each column and index.

The Alembic migrations (``migrations/versions/``) create exactly these tables; a test
compares the two, so a change here needs a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ARTIFACTS",
    "OUTPUTS",
    "PARAMS",
    "STUDIES",
    "TRIALS",
    "VALUES",
    "ArtifactRow",
    "Base",
    "Study",
    "Trial",
    "TrialOutputRow",
    "TrialParam",
    "TrialValue",
    "UTCDateTime",
]

# Deterministic constraint names, so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is
    converted to UTC and stored naive, and read back with UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - the impl type parses it
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    status: Mapped[str] = mapped_column(String)
    metric: Mapped[str] = mapped_column(String)
    mode: Mapped[str] = mapped_column(String)
    algorithm: Mapped[str] = mapped_column(String)
    scheduler: Mapped[str] = mapped_column(String)
    num_trials: Mapped[int | None] = mapped_column(Integer)
    spec_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stop_requested: Mapped[bool] = mapped_column(Boolean, server_default=false())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def id_by_name(cls, session: Session, name: str) -> int | None:
        """The id of the study named ``name``, or None where there is none."""
        return session.scalar(select(cls.id).where(cls.name == name))

    @classmethod
    def exists(cls, session: Session, study_id: int) -> bool:
        """Whether a study with id ``study_id`` exists."""
        return session.scalar(select(cls.id).where(cls.id == study_id)) is not None


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        Index("ix_trials_study_id_state_value", "study_id", "state", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String)
    value: Mapped[float | None] = mapped_column(Double)
    metrics_json: Mapped[str] = mapped_column(Text, server_default=text("'{}'"))
    node: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    attempt_errors_json: Mapped[str] = mapped_column(Text, server_default=text("'[]'"))
    values_json: Mapped[str | None] = mapped_column(Text)
    feasible: Mapped[bool | None] = mapped_column(Boolean)
    constraints_json: Mapped[str | None] = mapped_column(Text)
    parent: Mapped[int | None] = mapped_column(Integer)


class TrialParam(Base):
    __tablename__ = "trial_params"
    __table_args__ = (
        Index("ix_trial_params_name_value_float", "name", "value_float"),
        # On SQLite, store the rows in primary-key order: a trial's params sit together.
        {"sqlite_with_rowid": False},
    )

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String, primary_key=True)
    value_json: Mapped[str] = mapped_column(Text)
    value_float: Mapped[float | None] = mapped_column(Double)


class TrialValue(Base):
    __tablename__ = "trial_values"
    # On SQLite, store the rows in primary-key order: a trial's curves sit together.
    __table_args__ = {"sqlite_with_rowid": False}

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String, primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)


class TrialOutputRow(Base):
    """What one attempt of a trial wrote to stdout and stderr: its last 64 KiB."""

    __tablename__ = "trial_outputs"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, server_default=false())


class ArtifactRow(Base):
    """A checkpoint or model of a trial in the study's artifacts store."""

    __tablename__ = "artifacts"
    __table_args__ = (Index("ix_artifacts_trial_id_kind_step", "trial_id", "kind", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String)
    uri: Mapped[str] = mapped_column(Text, unique=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Core tables, for the set-based statements of the write path and the read model.
STUDIES: Table = Base.metadata.tables["studies"]
TRIALS: Table = Base.metadata.tables["trials"]
PARAMS: Table = Base.metadata.tables["trial_params"]
VALUES: Table = Base.metadata.tables["trial_values"]
OUTPUTS: Table = Base.metadata.tables["trial_outputs"]
ARTIFACTS: Table = Base.metadata.tables["artifacts"]
