"""The storage under faults and load: an old schema upgraded, batches cut anywhere,
a database that goes away and comes back, several processes writing one database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tuner.exceptions import StorageRefused, StorageUnavailable
from tuner.run import Recorder
from tuner.storage import (
    Storage,
    TrialFinished,
    TrialResult,
    TrialRetried,
    TrialStarted,
)
from tuner.storage._engine import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
SPEC = {"name": "s", "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}}


def new_study(storage: Storage, name: str = "s") -> int:
    return storage.create_study(
        name,
        spec={**SPEC, "name": name},
        metric="loss",
        mode="min",
        algorithm="tpe",
        scheduler="none",
        num_trials=10,
    ).id


# ------------------------------------------------------------------ migration 0002


def _upgrade_to(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from tuner.storage._migrations import _MIGRATIONS

    db = Database(url)
    with db.write_engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    db.close()


def test_migration_0002_upgrades_a_0001_database_and_keeps_everything(storage_url: str) -> None:
    _upgrade_to(storage_url, "0001")
    db = Database(storage_url)
    with db.write_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO studies (id, name, status, metric, mode, algorithm, scheduler, "
                "num_trials, spec_json, created_at, stop_requested) VALUES (1, 'old', "
                "'completed', 'loss', 'min', 'tpe', 'none', 2, :spec, :t, false)"
            ),
            {"spec": '{"name": "old"}', "t": T0},
        )
        c.execute(
            text(
                "INSERT INTO trials (id, study_id, number, state, value, metrics_json, "
                "started_at, finished_at, duration_s, steps) VALUES "
                "(7, 1, 0, 'completed', 0.5, '{\"loss\": 0.5}', :t, :t, 1.0, 2)"
            ),
            {"t": T0},
        )
        c.execute(
            text(
                "INSERT INTO trial_values (trial_id, metric, step, value) VALUES "
                "(7, 'loss', 1, 0.9), (7, 'loss', 2, 0.5)"
            )
        )
    db.close()
    with Storage(storage_url) as storage:  # upgrades to the head
        with storage._engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        study = storage.get_study("old")
        [trial] = storage.get_trials(study.id)
        assert (trial.number, trial.state, trial.value, trial.steps) == (0, "completed", 0.5, 2)
        assert trial.attempts == 1 and trial.attempt_errors == ()
        assert storage.get_intermediate(study.id) == {0: {"loss": [(1, 0.9), (2, 0.5)]}}


# ------------------------------------------------ batches cut anywhere (property)

# One trial's life: started, then results and retries in any order, maybe finished.
_OP = st.one_of(
    st.tuples(st.just("result"), st.integers(0, 3), st.floats(-5, 5)),
    st.tuples(st.just("retry"), st.sampled_from(["ActorDiedError: node died", "boom"])),
)
_LIFE = st.tuples(st.lists(_OP, max_size=6), st.sampled_from([None, "completed", "failed"]))


def _events(study_id: int, number: int, life: Any) -> list[Any]:
    ops, end = life
    events: list[Any] = [TrialStarted(study_id, number, {"x": number / 10}, T0)]
    attempt = 1
    for op in ops:
        if op[0] == "result":
            events.append(TrialResult(study_id, number, op[1], {"loss": op[2], "n": number}))
        else:
            attempt += 1
            events.append(TrialRetried(study_id, number, attempt, op[1]))
    if end is not None:
        events.append(
            TrialFinished(study_id, number, end, T0 + timedelta(seconds=5), 5.0, {}, 1.0, None)
        )
    return events


def _snapshot(storage: Storage, study_id: int) -> Any:
    trials = [
        (t.number, t.state, t.params, t.metrics, t.value, t.steps, t.attempts, t.attempt_errors)
        for t in storage.get_trials(study_id)
    ]
    return trials, storage.get_intermediate(study_id)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lives=st.lists(_LIFE, min_size=1, max_size=3),
    order=st.lists(st.integers(0, 2), max_size=40),
    cuts=st.lists(st.booleans(), max_size=40),
)
def test_events_in_any_batches_give_the_database_that_one_at_a_time_gives(
    lives: list[Any], order: list[int], cuts: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one = Storage(f"sqlite:///{tmp}/one.db")
        many = Storage(f"sqlite:///{tmp}/many.db")
        a, b = new_study(one), new_study(many)
        queues = [_events(0, n, life) for n, life in enumerate(lives)]
        # Interleave the trials' events as `order` says, each trial's kept in order.
        interleaved: list[Any] = []
        picks = iter(order)
        while any(queues):
            live = [q for q in queues if q]
            interleaved.append(live[next(picks, 0) % len(live)].pop(0))
        for e in interleaved:
            one.write([_with_study(e, a)])
        batch: list[Any] = []
        for i, e in enumerate(interleaved):
            batch.append(_with_study(e, b))
            if i < len(cuts) and cuts[i]:
                many.write(batch)
                batch = []
        many.write(batch)
        assert _snapshot(one, a) == _snapshot(many, b)
        one.close()
        many.close()


def _with_study(event: Any, study_id: int) -> Any:
    from dataclasses import replace

    return replace(event, study_id=study_id)


def test_a_retry_drops_the_dead_attempts_results(storage_url: str) -> None:
    with Storage(storage_url) as storage:
        sid = new_study(storage)
        storage.write([TrialStarted(sid, 0, {"x": 0.5}, T0)])
        storage.write([TrialResult(sid, 0, s, {"loss": 1.0 / s}) for s in (1, 2, 3)])
        storage.write([TrialRetried(sid, 0, 2, "ActorDiedError: the worker died")])
        storage.write([TrialResult(sid, 0, s, {"loss": 2.0 / s}) for s in (1, 2)])
        storage.write([TrialFinished(sid, 0, "completed", T0, 1.0, {}, 1.0)])
        [trial] = storage.get_trials(sid)
        assert (trial.steps, trial.attempts) == (2, 2)
        assert trial.attempt_errors == ("ActorDiedError: the worker died",)
        assert storage.get_intermediate(sid) == {0: {"loss": [(1, 2.0), (2, 1.0)]}}


# ------------------------------------------------ a database that goes away


class _Away:
    """A storage whose database is unreachable until `back_at` (time.monotonic())."""

    def __init__(self, storage: Storage, back_at: float) -> None:
        self._storage = storage
        self.back_at = back_at
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._storage, name)
        if name not in ("write", "heartbeat", "is_stop_requested"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if time.monotonic() < self.back_at:
                self.refused += 1
                raise StorageUnavailable(
                    "cannot write trial events in postgresql://127.0.0.1/test: connection refused"
                )
            return target(*args, **kwargs)

        return call


def test_results_queued_while_the_database_is_away_are_written_when_it_returns(
    tmp_path: Path,
) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'db.db'}")
    sid = new_study(storage)
    away = _Away(storage, time.monotonic() + 1.5)
    gave_up = threading.Event()
    recorder = Recorder(away, interval_s=0.05, grace_s=30, on_give_up=lambda e: gave_up.set())  # type: ignore[arg-type]
    recorder.put(TrialStarted(sid, 0, {"x": 0.1}, T0))
    for step in range(1, 101):
        recorder.put(TrialResult(sid, 0, step, {"loss": 1 / step}))
        time.sleep(0.01)
    recorder.put(TrialFinished(sid, 0, "completed", T0, 1.0, {}, 0.01))
    recorder.close()
    assert away.refused > 0
    assert recorder.error is None and not gave_up.is_set()
    [trial] = storage.get_trials(sid)
    assert (trial.state, trial.steps) == ("completed", 100)
    assert len(storage.get_intermediate(sid)[0]["loss"]) == 100


def test_a_database_away_past_the_grace_period_stops_the_study(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'db.db'}")
    sid = new_study(storage)
    away = _Away(storage, time.monotonic() + 3600)
    gave_up = threading.Event()
    recorder = Recorder(away, interval_s=0.05, grace_s=0.5, on_give_up=lambda e: gave_up.set())  # type: ignore[arg-type]
    recorder.put(TrialStarted(sid, 0, {"x": 0.1}, T0))
    assert gave_up.wait(10)
    recorder.close()
    assert recorder.error is not None and "connection refused" in str(recorder.error)


def test_events_the_database_refuses_stop_the_study_at_once_without_retrying(
    tmp_path: Path,
) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'db.db'}")
    sid = new_study(storage)
    gave_up = threading.Event()
    recorder = Recorder(storage, interval_s=0.05, grace_s=3600, on_give_up=lambda e: gave_up.set())
    recorder.put(TrialStarted(sid, 0, {"x": 0.1}, T0))
    recorder.put(TrialStarted(sid, 0, {"x": 0.2}, T0))  # trial 0 again: refused
    assert gave_up.wait(10)  # not after the hour of grace an unreachable database gets
    recorder.close()
    assert isinstance(recorder.error, StorageRefused)
    assert "cannot write trial events" in str(recorder.error)


def test_storage_errors_are_typed_by_the_drivers_exception_not_its_text(
    storage_url: str,
) -> None:
    with Storage(storage_url) as storage:
        sid = new_study(storage)
        storage.write([TrialStarted(sid, 0, {"x": 0.1}, T0)])
        with pytest.raises(StorageRefused):  # trial 0 again: the database refuses it
            storage.write([TrialStarted(sid, 0, {"x": 0.2}, T0)])
        assert [t.params for t in storage.get_trials(sid)] == [{"x": 0.1}]
    with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1:1"):
        Storage("postgresql://postgres@127.0.0.1:1/test")  # nothing listens there


# ------------------------------------------------ several processes, one database

_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from tuner.storage import Storage, TrialFinished, TrialResult, TrialStarted
    url, name, trials, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Storage(url) as s:
        sid = s.create_study(name, spec={"name": name, "search_space": {}}, metric="loss",
                             mode="min", algorithm="tpe", scheduler="none", num_trials=trials).id
        for n in range(trials):
            s.write([TrialStarted(sid, n, {"x": n}, t0)])
            for k in range(0, steps, 5):
                s.write([TrialResult(sid, n, k + j, {"loss": 1.0}) for j in range(5)])
            s.write([TrialFinished(sid, n, "completed", t0, 1.0, {}, 1.0)])
    print("ok")
    """
)
_READER = textwrap.dedent(
    """
    import sys, time
    from tuner.storage import DashboardReads, Storage
    url, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    with Storage(url, read_only=True) as s:
        reads = DashboardReads(s)
        n = 0
        while time.monotonic() < end:
            for summary in s.list_studies():
                s.get_trials(summary.study.id)
                s.get_intermediate(summary.study.id)
            n += 1
    print("ok", n)
    """
)


def _python(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-c", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.startswith("ok"), err[-2000:]


def test_processes_opening_a_new_sqlite_database_at_once_never_fail(tmp_path: Path) -> None:
    opener = (
        "import sys; from tuner.storage import Storage; Storage(sys.argv[1]).close(); print('ok')"
    )
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'new{round_}.db'}"
        _check([_python(opener, url) for _ in range(6)])
        with Storage(url) as storage:
            assert storage.list_studies() == []


def test_concurrent_writers_lose_and_duplicate_nothing(storage_url: str) -> None:
    """Four processes write one SQLite file while a dashboard-like reader reads it;
    eight write one PostgreSQL database."""
    url = storage_url
    sqlite = url.startswith("sqlite")
    writers = 4 if sqlite else 8
    Storage(url).close()  # the reader opens it read-only: create it first
    trials, steps = 15, 20
    procs = [_python(_WRITER, url, f"w{i}", str(trials), str(steps)) for i in range(writers)]
    if sqlite:
        procs.append(_python(_READER, url, "8"))
    _check(procs)
    with Storage(url) as storage:
        summaries = storage.list_studies()
        assert sorted(s.study.name for s in summaries) == sorted(f"w{i}" for i in range(writers))
        for s in summaries:
            assert s.trial_counts["completed"] == trials
            ts = storage.get_trials(s.study.id)
            assert [t.number for t in ts] == list(range(trials))
            assert all(t.steps == steps for t in ts)
            curves = storage.get_intermediate(s.study.id)
            assert all(len(curves[n]["loss"]) == steps for n in range(trials))
