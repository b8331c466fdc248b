"""Checkpoints and models in storage, on SQLite and PostgreSQL: migration 0005 upgrades
a database of the previous schema in place; artifact rows follow their trial; a retry
from a checkpoint keeps the results up to it and drops the rest; a trial's parent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tests.storage.test_faults_storage import _upgrade_to
from tuner.exceptions import StorageError
from tuner.storage import (
    ArtifactDeleted,
    ArtifactSaved,
    Storage,
    TrialFinished,
    TrialResult,
    TrialRetried,
    TrialStarted,
)
from tuner.storage._engine import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"name": "s", "metric": "loss", "mode": "min", "search_space": {}}


def _study(storage: Storage, name: str = "s") -> int:
    return storage.create_study(
        name,
        spec={**SPEC, "name": name},
        metric="loss",
        mode="min",
        algorithm="tpe",
        scheduler="none",
        num_trials=4,
    ).id


def test_migration_0005_upgrades_a_0004_database_in_place(storage_url: str) -> None:
    _upgrade_to(storage_url, "0004")
    db = Database(storage_url)
    with db.write_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO studies (id, name, status, metric, mode, algorithm, scheduler, "
                "num_trials, spec_json, created_at, stop_requested) VALUES (1, 'old', "
                "'running', 'loss', 'min', 'tpe', 'none', 3, :spec, :t, false)"
            ),
            {"spec": json.dumps({**SPEC, "name": "old"}), "t": T0},
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
        study = storage.get_study("old")
        done, running = storage.get_trials(study.id)
        assert (done.value, done.parent, running.parent) == (0.5, None, None)
        assert storage.artifacts(study.id) == []
        storage.write([ArtifactSaved(study.id, 1, 3, "checkpoint", "file:///a/ck-3", 10)])
        [row] = storage.artifacts(study.id)
        assert (row.number, row.step, row.kind, row.uri, row.bytes) == (
            1,
            3,
            "checkpoint",
            "file:///a/ck-3",
            10,
        )


def test_artifact_rows_follow_their_trial_and_its_study(storage_url: str) -> None:
    with Storage(storage_url) as storage:
        sid = _study(storage)
        storage.write(
            [
                TrialStarted(sid, 0, {"x": 1}, T0),
                TrialStarted(sid, 1, {"x": 2}, T0, parent=0),
                ArtifactSaved(sid, 0, 1, "checkpoint", "/s/t0/ck-1", 5),
                ArtifactSaved(sid, 0, 2, "checkpoint", "/s/t0/ck-2", 6),
                ArtifactSaved(sid, 1, 1, "checkpoint", "/s/t1/ck-1", 7),
            ]
        )
        storage.write(
            [
                TrialFinished(sid, 0, "completed", T0, 1.0, {"loss": 0.1}, 0.1),
                # A finished trial takes its model, and its checkpoints' deletion.
                ArtifactSaved(sid, 0, 2, "model", "/s/t0/model-2", 9),
                ArtifactDeleted(sid, 0, "/s/t0/ck-1"),
            ]
        )
        assert [(a.number, a.kind, a.step) for a in storage.artifacts(sid)] == [
            (0, "checkpoint", 2),
            (0, "model", 2),
            (1, "checkpoint", 1),
        ]
        assert [a.uri for a in storage.artifacts(sid, 1)] == ["/s/t1/ck-1"]
        assert storage.get_trial(sid, 1).parent == 0
        # Saved again under the same folder (a retried attempt): one row.
        storage.write([ArtifactSaved(sid, 1, 1, "checkpoint", "/s/t1/ck-1", 8)])
        assert [a.bytes for a in storage.artifacts(sid, 1)] == [8]
        storage.delete_study("s")
        sid2 = _study(storage, "t")
        assert storage.artifacts(sid2) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ArtifactSaved(0, 0, 1, "weights", "/x", 1), "kind must be one of"),
        (ArtifactSaved(0, 0, -1, "model", "/x", 1), "step must be an int >= 0"),
        (ArtifactSaved(0, 0, 1, "model", "", 1), "uri must be a non-empty str"),
        (ArtifactSaved(0, 9, 1, "model", "/x", 1), "was never started"),
        (TrialStarted(0, 5, {}, T0, parent=-2), "parent must be a trial number"),
    ],
)
def test_bad_artifact_events_write_nothing(storage_url: str, event: object, message: str) -> None:
    with Storage(storage_url) as storage:
        sid = _study(storage)
        storage.write([TrialStarted(sid, 0, {}, T0)])
        fixed = type(event)(**{**event.__dict__, "study_id": sid})  # type: ignore[call-arg]
        with pytest.raises(StorageError, match=message):
            storage.write([TrialResult(sid, 0, 0, {"loss": 1.0}), fixed])
        assert storage.get_trial(sid, 0).steps == 0
        assert storage.artifacts(sid) == []


def test_a_retry_from_a_checkpoint_keeps_the_steps_up_to_it(storage_url: str) -> None:
    with Storage(storage_url) as storage:
        sid = _study(storage)
        storage.write(
            [TrialStarted(sid, 0, {}, T0)]
            + [TrialResult(sid, 0, step, {"loss": 10.0 - step}) for step in range(6)]
        )
        # The worker died after step 5; the checkpoint was at step 3.
        storage.write(
            [
                TrialRetried(sid, 0, 2, "WorkerDied: node lost", keep_through=3),
                TrialResult(sid, 0, 4, {"loss": 5.5}),
            ]
        )
        trial = storage.get_trial(sid, 0)
        curve = storage.get_intermediate(sid)[0]["loss"]
        assert curve == [(0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 5.5)]
        assert (trial.steps, trial.attempts) == (5, 2)
        storage.write([TrialResult(sid, 0, 5, {"loss": 5.0})])
        assert storage.get_trial(sid, 0).steps == 6
        # Without a checkpoint, the attempt starts from nothing.
        storage.write([TrialRetried(sid, 0, 3, "WorkerDied: again")])
        assert storage.get_intermediate(sid).get(0, {}) == {}
        assert storage.get_trial(sid, 0).steps == 0


def test_a_retry_in_the_batch_of_the_results_it_keeps(storage_url: str) -> None:
    with Storage(storage_url) as storage:
        sid = _study(storage)
        storage.write(
            [TrialStarted(sid, 0, {}, T0)]
            + [TrialResult(sid, 0, step, {"loss": 10.0 - step}) for step in range(6)]
            + [TrialRetried(sid, 0, 2, "WorkerDied", keep_through=3)]
            + [TrialResult(sid, 0, step, {"loss": 1.0}) for step in (4, 5)]
        )
        storage.write([TrialRetried(sid, 0, 3, "WorkerDied", keep_through=1)])
        assert [s for s, _ in storage.get_intermediate(sid)[0]["loss"]] == [0, 1]
        assert storage.get_trial(sid, 0).steps == 2
