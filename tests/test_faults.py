"""Faults injected into real runs on the session's local Ray: hung objectives, dead
workers, failing studies, study timeouts. Each test checks what the database holds."""

from __future__ import annotations

import copy
import json
import os
import time

import pytest

import tuner
from tests.objectives import dies_once_marker
from tuner._export import export
from tuner.exceptions import StudyFailedError

pytestmark = pytest.mark.integration


def spec(name, function, **changes):
    data = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": f"tests.objectives:{function}", "max_steps": 5},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": 4, "max_concurrent": 2, "seed": 0},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return data


def create(data, storage):
    return tuner.create_study(copy.deepcopy(data), storage=storage)


def test_hung_trial_times_out_as_failed_and_the_study_goes_on(ray_local, sqlite_url):
    data = spec(
        "hang",
        "hangs_for_negative_x",
        search_space={"x": {"type": "float", "values": [-0.5, 0.25, 0.5, 0.75]}},
        search={"algorithm": "grid"},
        limits={"trial_timeout_s": 5},
    )
    started = time.monotonic()
    study = create(data, sqlite_url).run(progress=False)
    assert time.monotonic() - started < 180  # not for ever (a busy 2-core machine)
    trials = {t.params["x"]: t for t in study.trials()}
    assert trials[-0.5].state == "failed"
    assert trials[-0.5].error == "timed out after 5 s"
    assert trials[-0.5].attempts == 1  # a timeout is not retried
    assert {trials[x].state for x in (0.25, 0.5, 0.75)} == {"completed"}
    assert study.status == "completed"


def test_max_failed_trials_fails_the_study_with_the_first_error(ray_local, sqlite_url):
    data = spec(
        "too-many-failures",
        "always_fails",
        search={"num_trials": 20, "max_concurrent": 1},
        limits={"max_failed_trials": 2},
    )
    study = create(data, sqlite_url)
    with pytest.raises(StudyFailedError, match=r"limits.max_failed_trials=2\); first error: "):
        study.run(progress=False)
    trials = study.trials()
    assert study.status == "failed"
    assert sum(t.state == "failed" for t in trials) == 2
    assert len(trials) < 20
    assert all(t.attempts == 1 for t in trials)  # an objective that raised is not retried


def test_study_timeout_stops_the_study_and_resume_goes_on(ray_local, sqlite_url):
    data = spec("study-timeout", "steady", search={"num_trials": 40}, limits={"study_timeout_s": 4})
    started = time.monotonic()
    study = create(data, sqlite_url).run(progress=False)
    assert time.monotonic() - started < 30
    assert study.status == "stopped"
    first = study.trials()
    assert {t.state for t in first} <= {"completed", "stopped"}
    assert sum(t.state == "completed" for t in first) < 40
    study.resume(progress=False)  # each run gets study_timeout_s
    assert study.status == "stopped"
    again = study.trials()
    assert again[: len(first)] == first  # nothing of the first run changed
    assert len(again) >= len(first)  # a busy machine may start none in 4 s


def test_trial_whose_worker_died_is_retried_with_its_number_and_params(ray_local, sqlite_url):
    values = [0.111, 0.222, 0.333]
    for x in values:
        if os.path.exists(dies_once_marker(x)):
            os.remove(dies_once_marker(x))
    data = spec(
        "retry",
        "dies_once",
        search_space={"x": {"type": "float", "values": values}},
        search={"algorithm": "grid"},
        limits={"max_retries": 1},
    )
    study = create(data, sqlite_url).run(progress=False)
    trials = study.trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert sorted(t.params["x"] for t in trials) == values
    for t in trials:
        assert t.state == "completed", t.error
        assert t.attempts == 2
        assert len(t.attempt_errors) == 1 and t.attempt_errors[0]
        # the dead attempt's two results are not counted twice
        assert t.steps == 5
        curve = study.intermediate([t.number])[t.number]["loss"]
        assert [s for s, _ in curve] == [1, 2, 3, 4, 5]
        # Each attempt knew its number and attempt (tuner.current_trial()); both
        # attempts' output is kept.
        first, second = study.trial_output(t.number)
        assert first.text == f"trial {t.number}, attempt 1\n"
        assert second.text == f"trial {t.number}, attempt 2\n"
    assert study.status == "completed"
    exported = json.loads(export(study, "json", None) or "[]")
    assert [t["number"] for t in exported] == [0, 1, 2]  # an empty export must not pass
    assert all(t["attempts"] == 2 and len(t["attempt_errors"]) == 1 for t in exported)
    assert all(set(t) >= {"number", "state", "params", "metrics", "error"} for t in exported)


@pytest.mark.postgres
def test_postgres_connections_killed_under_a_running_study_lose_nothing(ray_local, postgres_url):
    import threading

    import psycopg
    from sqlalchemy.engine import make_url

    data = spec("pg-outage", "steady", search={"num_trials": 8, "max_concurrent": 2})
    study = create(data, postgres_url)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            study.run(progress=False)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            done.set()

    runner = threading.Thread(target=run)
    runner.start()
    admin = make_url(postgres_url).set(drivername="postgresql")
    killed = 0
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        while not done.wait(1.0):
            killed += conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
    runner.join()
    assert errors == []
    assert killed > 0
    trials = study.trials()
    assert [t.number for t in trials] == list(range(8))
    assert {t.state for t in trials} == {"completed"}
    assert all(t.steps == 10 for t in trials)
    curves = study.intermediate()
    assert all(len(curves[t.number]["loss"]) == 10 for t in trials)
