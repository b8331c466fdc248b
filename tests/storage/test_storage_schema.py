"""The schema the migrations build: it matches the models, and big studies delete fast."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, func, inspect, select, text

from tuner.storage import Storage
from tuner.storage._models import Base, UTCDateTime


@pytest.fixture
def storage(storage_url: str):  # type: ignore[no-untyped-def]
    storage = Storage(storage_url)
    yield storage
    storage.close()


def test_migrations_build_exactly_the_models(storage: Storage) -> None:
    with storage._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_documented_indexes_exist(storage: Storage) -> None:
    inspector = inspect(storage._engine)
    assert set(inspector.get_table_names()) >= {
        "alembic_version",
        "studies",
        "trials",
        "trial_params",
        "trial_values",
    }
    indexes = {
        table: {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        for table in ("trials", "trial_params")
    }
    assert ("study_id", "state", "value") in indexes["trials"]
    assert ("name", "value_float") in indexes["trial_params"]
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("trials")}
    assert ("study_id", "number") in uniques
    assert inspector.get_pk_constraint("trial_params")["constrained_columns"] == [
        "trial_id",
        "name",
    ]
    assert inspector.get_pk_constraint("trial_values")["constrained_columns"] == [
        "trial_id",
        "metric",
        "step",
    ]
    for table in ("trials", "trial_params", "trial_values"):
        (foreign_key,) = inspector.get_foreign_keys(table)
        assert foreign_key["options"].get("ondelete") == "CASCADE"


def test_deleting_a_study_of_100k_trials(storage: Storage) -> None:
    big, small = (
        storage.create_study(
            name, spec={}, metric="loss", mode="min", algorithm="random", scheduler="fifo",
            num_trials=None,
        )
        for name in ("big", "small")
    )  # fmt: skip
    started = bindparam("t", datetime(2024, 1, 1, tzinfo=UTC), type_=UTCDateTime())
    # Filled in SQL, not through the storage: the test is about the schema's deletes, and
    # 100k trials through write() or import_trials() take longer than the delete.
    fill = [
        """INSERT INTO trials (study_id, number, state, value, metrics_json, started_at, steps)
           WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 99999)
           SELECT :study, n, 'completed', n, '{"loss": 1.0}', :t, 2 FROM seq""",
        """INSERT INTO trial_params (trial_id, name, value_json, value_float)
           SELECT id, 'lr', '0.1', 0.1 FROM trials WHERE study_id = :study""",
        """INSERT INTO trial_values (trial_id, metric, step, value)
           SELECT id, 'loss', 0, 1.0 FROM trials WHERE study_id = :study""",
        """INSERT INTO trial_values (trial_id, metric, step, value)
           SELECT id, 'loss', 1, 0.5 FROM trials WHERE study_id = :study""",
    ]
    with storage._engine.begin() as conn:
        for statement in fill:
            query = text(statement)
            if ":t" in statement:
                query = query.bindparams(started)
            conn.execute(query, {"study": big.id})
        conn.execute(
            text(
                "INSERT INTO trials (study_id, number, state, metrics_json, started_at, steps) "
                "VALUES (:study, 0, 'running', '{}', :t, 0)"
            ).bindparams(started),
            {"study": small.id},
        )
    assert storage.list_studies()[0].trial_counts["completed"] == 100_000

    storage.delete_study("big")

    with storage._engine.connect() as conn:
        for table, left in (("trials", 1), ("trial_params", 0), ("trial_values", 0)):
            count = conn.execute(select(func.count()).select_from(text(table))).scalar_one()
            assert count == left, table
    assert [s.study.name for s in storage.list_studies()] == ["small"]
