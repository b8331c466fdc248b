"""The public Python API: exported names, and what misuse looks like."""

from __future__ import annotations

import pytest

import tuner
from tuner.exceptions import ReportError, StudyExistsError, StudyNotFoundError

SPEC = {
    "name": "api",
    "metric": "loss",
    "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
    "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
    "search": {"algorithm": "random", "num_trials": 4, "max_concurrent": 2},
}


def test_exported_names_are_pinned():
    assert sorted(tuner.__all__) == sorted(
        [
            "ReportError",
            "SpecError",
            "StorageError",
            "Study",
            "StudyExistsError",
            "StudyFailedError",
            "StudyInterrupted",
            "StudyNotFoundError",
            "StudySpec",
            "Trial",
            "TrialInfo",
            "TunerError",
            "__version__",
            "create_study",
            "current_trial",
            "get_checkpoint",
            "load_spec",
            "load_study",
            "report",
        ]
    )
    for name in tuner.__all__:
        assert getattr(tuner, name) is not None
    assert all(
        issubclass(getattr(tuner, n), tuner.TunerError)
        for n in tuner.__all__
        if n.endswith("Error") and n != "TunerError"
    )


def test_report_outside_a_trial_says_where_to_call_it():
    with pytest.raises(ReportError, match="outside a trial"):
        tuner.report(step=0, loss=1.0)


def test_create_twice_fails_unless_load_if_exists(sqlite_url):
    first = tuner.create_study(SPEC, storage=sqlite_url)
    with pytest.raises(StudyExistsError) as info:
        tuner.create_study(SPEC, storage=sqlite_url)
    assert "api" in str(info.value)
    again = tuner.create_study(SPEC, storage=sqlite_url, load_if_exists=True)
    assert again.name == first.name


def test_load_missing_study(sqlite_url):
    tuner.create_study(SPEC, storage=sqlite_url)
    with pytest.raises(StudyNotFoundError):
        tuner.load_study("other", storage=sqlite_url)


def test_storage_precedence(monkeypatch, tmp_path):
    from tuner.study import resolve_storage_url

    spec = tuner.load_spec(SPEC)
    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    assert resolve_storage_url(None, spec) == "sqlite:///tuner.db"
    monkeypatch.setenv("TUNER_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(None, spec) == "sqlite:///env.db"
    spec_with_storage = tuner.load_spec({**SPEC, "storage": "sqlite:///spec.db"})
    assert resolve_storage_url(None, spec_with_storage) == "sqlite:///spec.db"
    assert resolve_storage_url("sqlite:///flag.db", spec_with_storage) == "sqlite:///flag.db"


@pytest.mark.integration
def test_a_real_sweep_is_recorded_in_postgresql(ray_local, postgres_url):
    """The plain postgresql://user@host:port/db form works as given."""
    study = tuner.create_study({**SPEC, "name": "pg-sweep"}, storage=postgres_url).run(
        progress=False
    )
    loaded = tuner.load_study("pg-sweep", storage=postgres_url)
    trials = loaded.trials()
    assert len(trials) == 4 and {t.state for t in trials} == {"completed"}
    assert loaded.best_trial.value == study.best_trial.value
    assert len(loaded.intermediate()[0]["loss"]) == 12
    assert loaded.status == "completed"
    tuner.load_study("pg-sweep", storage=postgres_url).storage.delete_study("pg-sweep")
