"""Objective values, feasibility and the Pareto set in storage, on SQLite and
PostgreSQL: migration 0003 from today's schema, what a finished trial gets, best
trial(s), the export and the dashboard's read model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.storage.test_faults_storage import _upgrade_to
from tuner._export import trials_frame, trials_json
from tuner.spec import load_spec
from tuner.storage import DashboardReads, Storage, TrialFinished, TrialStarted
from tuner.storage._engine import Database
from tuner.storage._objectives import StudyObjectives, pareto_flags

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
TRAINER = {"kind": "python", "function": "tests.objectives:two_parabolas"}


def test_migration_0003_upgrades_a_0002_database_and_keeps_everything(storage_url: str) -> None:
    # A database as today's (0002) code writes it: a study, a retried trial, a pruned
    # one, a running one, params and curves.
    _upgrade_to(storage_url, "0002")
    db = Database(storage_url)
    spec = {"name": "old", "metric": "loss", "mode": "min", "search_space": SPACE}
    with db.write_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO studies (id, name, status, metric, mode, algorithm, scheduler, "
                "num_trials, spec_json, created_at, stop_requested) VALUES (1, 'old', "
                "'completed', 'loss', 'min', 'tpe', 'asha', 3, :spec, :t, false)"
            ),
            {"spec": json.dumps(spec), "t": T0},
        )
        c.execute(
            text(
                "INSERT INTO trials (id, study_id, number, state, value, metrics_json, node, "
                "started_at, finished_at, duration_s, error, steps, attempts, "
                "attempt_errors_json) VALUES "
                "(7, 1, 0, 'completed', 0.5, '{\"loss\": 0.5}', 'n1', :t, :t, 1.0, NULL, 2, 2, "
                "'[\"ActorDiedError\"]'), "
                "(8, 1, 1, 'pruned', 0.9, '{\"loss\": 0.9}', 'n1', :t, :t, 0.5, NULL, 1, 1, '[]'), "
                "(9, 1, 2, 'running', NULL, '{}', NULL, :t, NULL, NULL, NULL, 0, 1, '[]')"
            ),
            {"t": T0},
        )
        c.execute(
            text(
                "INSERT INTO trial_params (trial_id, name, value_json, value_float) VALUES "
                "(7, 'x', '0.25', 0.25), (8, 'x', '0.75', 0.75), (9, 'x', '0.5', 0.5)"
            )
        )
        c.execute(
            text(
                "INSERT INTO trial_values (trial_id, metric, step, value) VALUES "
                "(7, 'loss', 1, 0.9), (7, 'loss', 2, 0.5), (8, 'loss', 1, 0.9)"
            )
        )
    db.close()

    with Storage(storage_url) as storage:  # upgrades to the head
        with storage._engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        study = storage.get_study("old")
        assert (study.metric, study.mode, study.scheduler, study.spec) == (
            "loss", "min", "asha", spec,
        )  # fmt: skip
        done, pruned, running = storage.get_trials(study.id)
        assert (done.number, done.state, done.value, done.steps, done.node) == (
            0, "completed", 0.5, 2, "n1",
        )  # fmt: skip
        assert done.params == {"x": 0.25} and done.metrics == {"loss": 0.5}
        assert done.attempts == 2 and done.attempt_errors == ("ActorDiedError",)
        assert (pruned.state, pruned.value, pruned.params) == ("pruned", 0.9, {"x": 0.75})
        assert (running.state, running.params) == ("running", {"x": 0.5})
        assert storage.get_intermediate(study.id) == {
            0: {"loss": [(1, 0.9), (2, 0.5)]},
            1: {"loss": [(1, 0.9)]},
        }
        # Old rows read as one objective, feasible (no study had constraints before).
        assert (done.values, done.feasible) == ((0.5,), True)
        assert (running.values, running.feasible) == (None, None)
        assert storage.best_trial(study.id).number == 0
        assert [t.number for t in storage.best_trials(study.id)] == [0]
        # and the upgraded database takes new trials with the new columns
        storage.write(
            [
                TrialStarted(study.id, 3, {"x": 0.1}, T0),
                TrialFinished(study.id, 3, "completed", T0, 1.0, {"loss": 0.2}, 0.2),
            ]
        )
        assert storage.get_trial(study.id, 3).values == (0.2,)


def _mo_study(storage: Storage, name: str = "mo", constraints=None):
    data = {
        "name": name,
        "objectives": [{"metric": "f1", "mode": "min"}, {"metric": "f2", "mode": "max"}],
        "constraints": constraints or [],
        "trainer": TRAINER,
        "search_space": SPACE,
        "search": {"algorithm": "nsga2"},
    }
    spec = load_spec(data)
    record = storage.create_study(
        name, spec=spec.to_dict(), metric=spec.metric, mode=spec.mode,
        algorithm="nsga2", scheduler="none", num_trials=10,
    )  # fmt: skip
    return record, spec


def _finish(storage, study_id, number, metrics, state="completed"):
    storage.write(
        [
            TrialStarted(study_id, number, {"x": number / 10}, T0 + timedelta(seconds=number)),
            TrialFinished(
                study_id, number, state, T0 + timedelta(seconds=number + 1), 1.0, metrics,
                metrics.get("f1"),
            ),
        ]
    )  # fmt: skip


@pytest.fixture
def storage(storage_url: str):  # type: ignore[no-untyped-def]
    with Storage(storage_url) as storage:
        yield storage


def test_a_finished_trial_gets_its_values_feasibility_and_constraint_values(storage):
    study, _ = _mo_study(storage, constraints=[{"metric": "latency_ms", "max": 20}])
    _finish(storage, study.id, 0, {"f1": 1.0, "f2": 2.0, "latency_ms": 10.0})
    _finish(storage, study.id, 1, {"f1": 0.5, "f2": 3.0, "latency_ms": 30.0})
    _finish(storage, study.id, 2, {"f1": 0.7})  # f2 and latency never reported
    a, b, c = storage.get_trials(study.id)
    assert (a.values, a.feasible, a.constraint_values) == ((1.0, 2.0), True, {"latency_ms": 10.0})
    assert (b.values, b.feasible, b.constraint_values) == ((0.5, 3.0), False, {"latency_ms": 30.0})
    assert (c.values, c.feasible, c.constraint_values) == (None, False, {"latency_ms": None})


def test_best_trials_are_the_non_dominated_feasible_completed_trials(storage):
    study, spec = _mo_study(storage, constraints=[{"metric": "latency_ms", "max": 20}])
    # (f1 min, f2 max)
    rows = [
        ({"f1": 1.0, "f2": 1.0, "latency_ms": 5}, "completed"),  # 0: front
        ({"f1": 2.0, "f2": 3.0, "latency_ms": 5}, "completed"),  # 1: front
        ({"f1": 2.0, "f2": 0.5, "latency_ms": 5}, "completed"),  # 2: dominated by 0 and 1
        ({"f1": 0.1, "f2": 9.0, "latency_ms": 50}, "completed"),  # 3: dominates all, infeasible
        ({"f1": 0.1, "f2": 9.0, "latency_ms": 5}, "pruned"),  # 4: not completed
        ({"f1": 1.0, "f2": 1.0, "latency_ms": 5}, "completed"),  # 5: ties 0: both kept
    ]
    for number, (metrics, state) in enumerate(rows):
        _finish(storage, study.id, number, metrics, state)
    assert [t.number for t in storage.best_trials(study.id)] == [0, 1, 5]

    # The export flags the same set, and carries values in objective order.
    trials = storage.get_trials(study.id)
    exported = trials_json(trials, {}, spec)
    assert [e["number"] for e in exported if e["pareto"]] == [0, 1, 5]
    assert exported[3]["feasible"] is False and exported[3]["values"] == [0.1, 9.0]
    frame = trials_frame(trials, spec)
    assert list(frame.columns[:7]) == [
        "number", "state", "value", "values.f1", "values.f2", "feasible", "pareto",
    ]  # fmt: skip
    assert frame.loc[frame["pareto"], "number"].tolist() == [0, 1, 5]

    # The read model: same flags, and a hypervolume that never shrinks.
    reads = DashboardReads(storage).objective_frame(storage.get_study("mo"))
    assert reads.loc[reads["pareto"], "number"].tolist() == [0, 1, 5]
    assert reads[["f1", "f2"]].iloc[1].tolist() == [2.0, 3.0]
    hv = reads["hypervolume"].tolist()
    assert hv == sorted(hv) and hv[0] > 0 and hv[1] > hv[0]
    assert hv[2] == hv[1] and hv[3] == hv[2]  # dominated, then infeasible: no change


def test_pareto_flags_equal_a_brute_force_non_dominated_sort():
    import random

    objectives = StudyObjectives(("a", "b", "c"), ("min", "max", "min"))
    rng = random.Random(0)
    points = [tuple(float(rng.randint(0, 4)) for _ in range(3)) for _ in range(60)]

    def dominates(p, q):
        lp, lq = objectives.losses(p), objectives.losses(q)
        return all(x <= y for x, y in zip(lp, lq, strict=True)) and lp != lq

    expected = [not any(dominates(q, p) for q in points) for p in points]
    assert pareto_flags(objectives, points) == expected


def test_a_single_objective_study_with_constraints_is_best_among_feasible_trials(storage):
    spec = load_spec(
        {
            "name": "so",
            "metric": "f1",
            "constraints": [{"metric": "latency_ms", "max": 20}],
            "trainer": TRAINER,
            "search_space": SPACE,
        }
    )
    study = storage.create_study(
        "so", spec=spec.to_dict(), metric="f1", mode="min", algorithm="tpe",
        scheduler="none", num_trials=3,
    )  # fmt: skip
    _finish(storage, study.id, 0, {"f1": 0.1, "latency_ms": 40})
    assert storage.best_trial(study.id) is None and storage.best_trials(study.id) == []
    assert storage.list_studies()[0].best_value is None  # infeasible is never best
    _finish(storage, study.id, 1, {"f1": 0.5, "latency_ms": 10})
    _finish(storage, study.id, 2, {"f1": 0.3, "latency_ms": 25})
    assert storage.best_trial(study.id).number == 1
    assert [t.number for t in storage.best_trials(study.id)] == [1]
    assert storage.list_studies()[0].best_value == 0.5
