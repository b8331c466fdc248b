"""Trial output in storage, on SQLite and PostgreSQL: migration 0004 upgrades a
database of the previous schema in place, and its running trial can take output."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text

from tests.storage.test_faults_storage import _upgrade_to
from tuner.storage import Storage, TrialFinished, TrialOutput, TrialResult
from tuner.storage._engine import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_migration_0004_upgrades_a_0003_database_in_place(storage_url: str) -> None:
    _upgrade_to(storage_url, "0003")
    db = Database(storage_url)
    spec = {"name": "old", "metric": "loss", "mode": "min", "search_space": {}}
    with db.write_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO studies (id, name, status, metric, mode, algorithm, scheduler, "
                "num_trials, spec_json, created_at, stop_requested) VALUES (1, 'old', "
                "'running', 'loss', 'min', 'tpe', 'none', 3, :spec, :t, false)"
            ),
            {"spec": json.dumps(spec), "t": T0},
        )
        c.execute(
            text(
                "INSERT INTO trials (id, study_id, number, state, value, metrics_json, "
                "started_at, steps, attempts, attempt_errors_json) VALUES "
                "(7, 1, 0, 'completed', 0.5, '{\"loss\": 0.5}', :t, 1, 1, '[]'), "
                "(8, 1, 1, 'running', NULL, '{}', :t, 0, 1, '[]')"
            ),
            {"t": T0},
        )
    db.close()

    with Storage(storage_url) as storage:  # upgrades to the head
        with storage._engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        study = storage.get_study("old")
        done, _running = storage.get_trials(study.id)
        assert (done.state, done.value) == ("completed", 0.5)
        assert storage.trial_output(study.id, 0) == []  # written before output was kept
        storage.write(
            [
                TrialOutput(study.id, 1, 1, "hello\n"),
                TrialResult(study.id, 1, 0, {"loss": 0.4}),
                TrialFinished(study.id, 1, "completed", T0, 1.0, {"loss": 0.4}, 0.4),
            ]
        )
        [out] = storage.trial_output(study.id, 1)
        assert (out.attempt, out.text, out.truncated) == (1, "hello\n", False)
