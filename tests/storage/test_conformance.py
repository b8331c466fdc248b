"""One conformance suite for :class:`tuner.storage.Storage`, run on every backend.

Each test gets a fresh empty database through the ``storage_url`` fixture (SQLite and
PostgreSQL), so a behaviour that differs between the backends fails here.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tests._optional import require
from tuner.exceptions import StorageError, StudyExistsError, StudyNotFoundError
from tuner.storage import (
    TRIAL_STATES,
    Storage,
    StudyRecord,
    StudyState,
    TrialFinished,
    TrialImport,
    TrialResult,
    TrialStarted,
    TrialState,
)
from tuner.storage._studies import update_study

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    storage = Storage(storage_url)
    yield storage
    storage.close()


def new_study(storage: Storage, name: str = "study", mode: str = "min", **kw: Any) -> StudyRecord:
    args: dict[str, Any] = {
        "spec": {"name": name, "search_space": {"lr": {"type": "float", "low": 1e-4}}},
        "metric": "loss",
        "mode": mode,
        "algorithm": "tpe",
        "scheduler": "asha",
        "num_trials": 10,
    }
    args.update(kw)
    return storage.create_study(name, **args)


def run_trial(
    storage: Storage,
    study_id: int,
    number: int,
    *,
    state: str | None = "completed",
    value: float | None = None,
    params: dict[str, Any] | None = None,
    curve: list[float] | None = None,
    error: str | None = None,
) -> None:
    """Write one trial in one batch: started, a result per ``curve`` point, finished."""
    events: list[TrialStarted | TrialResult | TrialFinished] = [
        TrialStarted(study_id, number, params or {"lr": 0.1}, T0 + timedelta(seconds=number))
    ]
    for step, loss in enumerate(curve or []):
        events.append(TrialResult(study_id, number, step, {"loss": loss}))
    if state is not None:
        final = {"loss": value} if value is not None else {}
        events.append(
            TrialFinished(
                study_id,
                number,
                state,
                T0 + timedelta(seconds=number + 1),
                1.0,
                final,
                value,
                error,
            )
        )
    storage.write(events)


def imported(number: int, **changes: Any) -> TrialImport:
    """A completed trial for import_trials: two metrics' curves over steps 0..2."""
    fields: dict[str, Any] = {
        "number": number,
        "params": {"lr": 0.1, "booster": "dart"},
        "state": TrialState.COMPLETED,
        "started_at": T0 + timedelta(seconds=number),
        "finished_at": T0 + timedelta(seconds=number + 1),
        "duration_s": 1.0,
        "metrics": {"loss": 0.5},
        "value": 0.5,
        "curves": {"loss": [(0, 2.0), (1, 1.0), (2, 0.5)], "acc": [(0, 0.1), (2, 0.9)]},
        "node": "node-1",
    }
    fields.update(changes)
    return TrialImport(**fields)


def row_counts(storage: Storage) -> dict[str, int]:
    """Rows in each of tuner's tables, read past the Storage API."""
    with storage._engine.connect() as conn:
        return {
            table: conn.execute(select(func.count()).select_from(text(table))).scalar_one()
            for table in ("studies", "trials", "trial_params", "trial_values")
        }


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# ---------------------------------------------------------------------- studies


def test_create_study_is_read_back_by_name_and_id(storage: Storage) -> None:
    spec = {"name": "s", "search_space": {"lr": {"low": 0.001, "log": True}}, "seed": 0}
    created = new_study(storage, "s", mode="max", spec=spec, num_trials=None)
    assert created.status == "created"
    assert created.name == "s" and created.mode == "max" and created.metric == "loss"
    assert created.algorithm == "tpe" and created.scheduler == "asha"
    assert created.num_trials is None
    assert created.spec == spec
    assert created.finished_at is None and created.heartbeat_at is None
    assert created.stop_requested is False
    assert created.created_at.tzinfo is not None
    assert created.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created.created_at) < timedelta(minutes=1)
    assert storage.get_study("s") == created
    assert storage.get_study_by_id(created.id) == created


def test_a_taken_name_raises_study_exists_with_the_way_out(storage: Storage) -> None:
    new_study(storage, "dup")
    with pytest.raises(StudyExistsError) as info:
        new_study(storage, "dup")
    message = one_line(info.value)
    assert "'dup'" in message and "tuner delete dup" in message and "load_study" in message
    assert [s.study.name for s in storage.list_studies()] == ["dup"]


def test_a_missing_study_raises_not_found_naming_tuner_list(storage: Storage) -> None:
    with pytest.raises(StudyNotFoundError) as info:
        storage.get_study("nope")
    assert "'nope'" in one_line(info.value) and "tuner list" in str(info.value)
    for call in (
        lambda: storage.get_study_by_id(999),
        lambda: storage.request_stop("nope"),
        lambda: storage.delete_study("nope"),
        lambda: storage.get_trials(999),
        lambda: storage.best_trial(999),
        lambda: storage.next_trial_number(999),
        lambda: storage.get_intermediate(999),
        lambda: storage.set_study_status(999, "running"),
        lambda: storage.is_stop_requested(999),
    ):
        with pytest.raises(StudyNotFoundError):
            call()


def test_list_studies_counts_states_and_best_per_mode(storage: Storage) -> None:
    low = new_study(storage, "low", mode="min")
    high = new_study(storage, "high", mode="max")
    empty = new_study(storage, "empty")
    run_trial(storage, low.id, 0, value=3.0)
    run_trial(storage, low.id, 1, value=1.0)
    run_trial(storage, low.id, 2, state="pruned", value=0.5)  # better, but not completed
    run_trial(storage, low.id, 3, state="failed", error="boom")
    run_trial(storage, low.id, 4, state=None)
    run_trial(storage, high.id, 0, value=2.0)
    run_trial(storage, high.id, 1, value=5.0)
    run_trial(storage, high.id, 2, state="stopped", value=9.0)

    summaries = storage.list_studies()
    assert [s.study.name for s in summaries] == ["low", "high", "empty"]
    by_name = {s.study.name: s for s in summaries}
    assert by_name["low"].trial_counts == {
        "running": 1,
        "completed": 2,
        "pruned": 1,
        "failed": 1,
        "stopped": 0,
    }
    assert by_name["low"].best_value == 1.0
    assert by_name["high"].best_value == 5.0
    assert by_name["high"].trial_counts["stopped"] == 1
    assert by_name["empty"].trial_counts == dict.fromkeys(TRIAL_STATES, 0)
    assert by_name["empty"].best_value is None
    assert by_name["empty"].study == storage.get_study_by_id(empty.id)


def test_delete_study_removes_its_rows_and_frees_the_name(storage: Storage) -> None:
    doomed = new_study(storage, "doomed")
    kept = new_study(storage, "kept")
    for number in range(3):
        run_trial(storage, doomed.id, number, value=1.0, curve=[3.0, 2.0])
    run_trial(storage, kept.id, 0, value=1.0, curve=[1.0], params={"a": 1, "b": "x"})
    before = row_counts(storage)

    storage.delete_study("doomed")

    assert row_counts(storage) == {
        "studies": before["studies"] - 1,
        "trials": 1,
        "trial_params": 2,
        "trial_values": 1,
    }
    with pytest.raises(StudyNotFoundError):
        storage.get_study("doomed")
    assert len(storage.get_trials(kept.id)) == 1
    again = new_study(storage, "doomed")
    assert storage.get_trials(again.id) == []
    assert storage.next_trial_number(again.id) == 0
    run_trial(storage, again.id, 0, value=2.0)  # the old trial numbers are free too
    assert [t.number for t in storage.get_trials(again.id)] == [0]


def test_study_status_sets_finished_at_only_when_terminal(storage: Storage) -> None:
    study = new_study(storage)
    storage.set_study_status(study.id, "running")
    running = storage.get_study_by_id(study.id)
    assert running.status == "running" and running.finished_at is None
    storage.set_study_status(study.id, "completed")
    done = storage.get_study_by_id(study.id)
    assert done.status == "completed" and done.finished_at is not None
    assert done.finished_at.utcoffset() == timedelta(0)
    storage.set_study_status(study.id, "running")  # resumed
    assert storage.get_study_by_id(study.id).finished_at is None
    with pytest.raises(StorageError):
        storage.set_study_status(study.id, "paused")


def test_heartbeat_records_the_time(storage: Storage) -> None:
    study = new_study(storage)
    storage.heartbeat(study.id)
    beat = storage.get_study_by_id(study.id).heartbeat_at
    assert beat is not None and abs(datetime.now(UTC) - beat) < timedelta(minutes=1)


def test_stop_request_crosses_storage_instances(storage_url: str, storage: Storage) -> None:
    study = new_study(storage, "s")
    assert storage.is_stop_requested(study.id) is False
    with Storage(storage_url) as other:  # `tuner stop s` in another process
        other.request_stop("s")
    assert storage.is_stop_requested(study.id) is True
    assert storage.get_study("s").stop_requested is True
    storage.clear_stop_request(study.id)
    assert storage.is_stop_requested(study.id) is False


# ---------------------------------------------------------------------- trials


def test_params_keep_their_types_and_inactive_ones_are_absent(storage: Storage) -> None:
    study = new_study(storage)
    dart = {
        "eta": 0.05,
        "gamma": 1.0,
        "max_depth": 7,
        "seed": 2**40,
        "offset": -3,
        "booster": "dart",
        "rate_drop": 0.1,
        "use_gpu": False,
        "balanced": True,
    }
    run_trial(storage, study.id, 0, params=dart, value=1.0)
    run_trial(storage, study.id, 1, params={"eta": 0.2, "booster": "gbtree"}, value=2.0)

    first, second = storage.get_trials(study.id)
    assert first.params == dart
    assert {k: type(v) for k, v in first.params.items()} == {k: type(v) for k, v in dart.items()}
    assert second.params == {"eta": 0.2, "booster": "gbtree"}
    assert "rate_drop" not in second.params
    assert storage.get_trial(study.id, 0).params == dart


def test_numpy_scalars_are_stored_as_plain_python_values(storage: Storage) -> None:
    np = require("numpy")
    study = new_study(storage)
    params = {"n": np.int64(5), "x": np.float64(0.5), "flag": np.bool_(True)}
    storage.write(
        [
            TrialStarted(study.id, 0, params, T0),
            TrialResult(study.id, 0, 0, {"loss": np.float32(0.25)}),
        ]
    )
    trial = storage.get_trial(study.id, 0)
    assert trial.params == {"n": 5, "x": 0.5, "flag": True}
    assert [type(trial.params[k]) for k in ("n", "x", "flag")] == [int, float, bool]
    assert trial.metrics == {"loss": 0.25}


def test_a_trial_reads_back_as_written(storage: Storage) -> None:
    study = new_study(storage)
    started = TrialStarted(study.id, 0, {"lr": 0.1}, T0, node="node-a")
    storage.write([started, TrialResult(study.id, 0, 0, {"loss": 0.9, "acc": 0.5})])
    running = storage.get_trial(study.id, 0)
    assert running.state == "running"
    assert running.metrics == {"loss": 0.9, "acc": 0.5}
    assert running.steps == 1 and running.value is None and running.finished_at is None
    assert running.node == "node-a" and running.started_at == T0

    storage.write([TrialResult(study.id, 0, 1, {"loss": 0.7})])
    storage.write(
        [
            TrialResult(study.id, 0, 2, {"loss": 0.6, "acc": 0.8}),
            TrialFinished(
                study.id, 0, "completed", T0 + timedelta(seconds=90), 90.5, {"loss": 0.55}, 0.55
            ),
        ]
    )
    done = storage.get_trial(study.id, 0)
    assert done.state == "completed"
    assert done.metrics == {"loss": 0.55, "acc": 0.8}  # last value of each metric
    assert done.value == 0.55
    assert done.steps == 3
    assert done.finished_at == T0 + timedelta(seconds=90)
    assert done.duration_s == 90.5
    assert done.node == "node-a" and done.error is None
    assert storage.get_trials(study.id) == [done]


def test_the_node_a_result_names_is_written_while_the_trial_runs(storage: Storage) -> None:
    """The start event knows no node (Ray places the trial after): the first result
    that names one records it, so a trial the driver never closes (killed, then marked
    stopped on resume) still says where it ran; a result naming none keeps it."""
    study = new_study(storage)
    storage.write([TrialStarted(study.id, 0, {"lr": 0.1}, T0),
                   TrialStarted(study.id, 1, {"lr": 0.2}, T0),
                   TrialResult(study.id, 1, 0, {"loss": 0.8}, node="host-b")])  # fmt: skip
    storage.write([TrialResult(study.id, 0, 0, {"loss": 0.9}, node="host-a")])
    assert storage.get_trial(study.id, 0).node == "host-a"  # running, written already
    assert storage.get_trial(study.id, 1).node == "host-b"  # same batch as its start
    storage.write([TrialResult(study.id, 0, 1, {"loss": 0.7})])
    assert storage.get_trial(study.id, 0).node == "host-a"
    storage.mark_running_trials(study.id, "stopped", "the driver died")
    assert [t.node for t in storage.get_trials(study.id)] == ["host-a", "host-b"]


def test_a_failed_trial_keeps_its_error_and_node(storage: Storage) -> None:
    study = new_study(storage)
    storage.write(
        [
            TrialStarted(study.id, 0, {"lr": 0.1}, T0),
            TrialFinished(
                study.id,
                0,
                "failed",
                T0,
                None,
                {},
                None,
                error="ValueError: lr too high",
                node="10.0.0.7",
            ),
        ]
    )
    trial = storage.get_trial(study.id, 0)
    assert (trial.state, trial.error, trial.node) == (
        "failed",
        "ValueError: lr too high",
        "10.0.0.7",
    )
    assert trial.metrics == {} and trial.value is None and trial.duration_s is None


def test_get_trials_filters_by_state_and_orders_by_number(storage: Storage) -> None:
    study = new_study(storage)
    for number, state in [(3, "pruned"), (0, "completed"), (2, None), (1, "completed")]:
        run_trial(storage, study.id, number, state=state, value=float(number))
    assert [t.number for t in storage.get_trials(study.id)] == [0, 1, 2, 3]
    completed = storage.get_trials(study.id, ["completed"])
    assert [t.number for t in completed] == [0, 1]
    assert [t.number for t in storage.get_trials(study.id, ["running", "pruned"])] == [2, 3]
    assert storage.get_trials(study.id, ["failed"]) == []
    with pytest.raises(StorageError):
        storage.get_trials(study.id, ["done"])
    with pytest.raises(StorageError):
        storage.get_trial(study.id, 42)


def test_intermediate_values_come_back_by_step(storage: Storage) -> None:
    study = new_study(storage)
    storage.write([TrialStarted(study.id, 0, {}, T0), TrialStarted(study.id, 1, {}, T0)])
    storage.write(
        [
            TrialResult(study.id, 0, 5, {"loss": 0.5, "acc": 0.9}),
            TrialResult(study.id, 0, 1, {"loss": 0.9}),
            TrialResult(study.id, 1, 0, {"loss": 2.0}),
        ]
    )
    storage.write([TrialResult(study.id, 0, 3, {"loss": 0.7})])
    storage.write([TrialResult(study.id, 0, 3, {"loss": 0.6})])  # a repeated step: last wins

    assert storage.get_intermediate(study.id) == {
        0: {"loss": [(1, 0.9), (3, 0.6), (5, 0.5)], "acc": [(5, 0.9)]},
        1: {"loss": [(0, 2.0)]},
    }
    assert storage.get_intermediate(study.id, [1]) == {1: {"loss": [(0, 2.0)]}}
    assert storage.get_intermediate(study.id, []) == {}
    many = list(range(2000))  # more numbers than one IN (...) carries
    assert set(storage.get_intermediate(study.id, many)) == {0, 1}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("min", 1), ("max", 3)],
)
def test_best_trial_per_mode_counts_completed_only(
    storage: Storage, mode: str, expected: int
) -> None:
    study = new_study(storage, mode=mode)
    assert storage.best_trial(study.id) is None
    run_trial(storage, study.id, 0, value=2.0)
    run_trial(storage, study.id, 1, value=1.0)
    run_trial(storage, study.id, 2, value=2.0)
    run_trial(storage, study.id, 3, value=3.0)
    run_trial(storage, study.id, 4, value=1.0)  # ties with 1 on min: the lower number wins
    run_trial(storage, study.id, 5, state="pruned", value=-100.0)
    run_trial(storage, study.id, 6, state="stopped", value=100.0)
    run_trial(storage, study.id, 7, state="failed")
    run_trial(storage, study.id, 8, state="completed", value=None)
    run_trial(storage, study.id, 9, state=None)
    best = storage.best_trial(study.id)
    assert best is not None and best.number == expected
    assert best.params == {"lr": 0.1}


def test_best_trial_ties_go_to_the_lowest_number(storage: Storage) -> None:
    study = new_study(storage, mode="max")
    for number in (4, 2, 7):
        run_trial(storage, study.id, number, value=1.5)
    best = storage.best_trial(study.id)
    assert best is not None and best.number == 2


def test_next_trial_number_follows_the_largest(storage: Storage) -> None:
    study = new_study(storage)
    assert storage.next_trial_number(study.id) == 0
    run_trial(storage, study.id, 0, value=1.0)
    assert storage.next_trial_number(study.id) == 1
    run_trial(storage, study.id, 5, state=None)
    assert storage.next_trial_number(study.id) == 6


def test_mark_running_trials_closes_only_running_ones(storage: Storage) -> None:
    study = new_study(storage)
    other = new_study(storage, "other")
    run_trial(storage, study.id, 0, value=1.0)
    for number in (1, 2, 3):
        run_trial(storage, study.id, number, state=None, curve=[1.0])
    run_trial(storage, other.id, 0, state=None)

    assert storage.mark_running_trials(study.id, "failed", "driver crashed") == 3

    trials = storage.get_trials(study.id)
    assert [t.state for t in trials] == ["completed", "failed", "failed", "failed"]
    assert trials[0].error is None
    assert {t.error for t in trials[1:]} == {"driver crashed"}
    assert all(t.finished_at is not None for t in trials)
    assert storage.get_trial(other.id, 0).state == "running"
    assert storage.mark_running_trials(study.id, "failed", "again") == 0
    with pytest.raises(StorageError, match="read-only"):  # marked trials are finished
        storage.write([TrialResult(study.id, 1, 1, {"loss": 0.5})])
    with pytest.raises(StorageError):
        storage.mark_running_trials(study.id, "running", "no")


def test_finished_trials_are_read_only(storage_url: str, storage: Storage) -> None:
    study = new_study(storage)
    run_trial(storage, study.id, 0, value=1.0)
    late = [
        [TrialResult(study.id, 0, 9, {"loss": 0.0})],
        [TrialFinished(study.id, 0, "pruned", T0, 1.0, {}, 0.0)],
        [
            TrialStarted(study.id, 1, {}, T0),
            TrialFinished(study.id, 1, "completed", T0, 1.0, {}, 1.0),
            TrialResult(study.id, 1, 0, {"loss": 0.0}),
        ],
    ]
    for batch in late:
        with pytest.raises(StorageError, match="read-only"):
            storage.write(batch)
    # A new instance has no cached knowledge of the trial: the database decides.
    with Storage(storage_url) as fresh, pytest.raises(StorageError, match="read-only"):
        fresh.write(late[0])
    assert storage.get_trial(study.id, 0).value == 1.0
    assert storage.get_trial(study.id, 0).steps == 0


def test_a_refused_batch_writes_nothing(storage: Storage) -> None:
    study = new_study(storage)
    run_trial(storage, study.id, 0, state=None)
    before = row_counts(storage)
    refused = [
        [TrialStarted(study.id, 1, {"a": 1}, T0), TrialResult(study.id, 7, 0, {"loss": 1.0})],
        [TrialStarted(study.id, 1, {"a": 1}, T0), TrialStarted(study.id, 1, {"a": 1}, T0)],
        [TrialResult(study.id, 0, 0, {"loss": 1.0}), TrialStarted(study.id, 0, {}, T0)],
        [TrialStarted(study.id, 1, {}, T0), TrialStarted(999, 0, {}, T0)],
        [TrialResult(study.id, 0, 0, {"loss": 1.0}), "not an event"],
    ]
    for batch in refused:
        with pytest.raises(StorageError) as info:
            storage.write(batch)  # type: ignore[arg-type]
        one_line(info.value)
    assert row_counts(storage) == before
    # The failures left no stale state behind: the same trials can still be written.
    storage.write([TrialStarted(study.id, 1, {"a": 1}, T0)])
    storage.write([TrialResult(study.id, 0, 0, {"loss": 1.0})])
    assert storage.get_trial(study.id, 0).steps == 1


def test_a_trial_started_in_another_storage_instance_can_be_continued(
    storage_url: str, storage: Storage
) -> None:
    study = new_study(storage)
    storage.write(
        [TrialStarted(study.id, 0, {"lr": 0.1}, T0), TrialResult(study.id, 0, 0, {"a": 1.0})]
    )
    with Storage(storage_url) as resumed:
        with pytest.raises(StorageError, match="already started"):
            resumed.write([TrialStarted(study.id, 0, {}, T0)])
        resumed.write([TrialResult(study.id, 0, 1, {"b": 2.0})])
        resumed.write([TrialFinished(study.id, 0, "completed", T0, 2.0, {"c": 3.0}, 3.0)])
    trial = storage.get_trial(study.id, 0)
    assert trial.metrics == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert trial.steps == 2 and trial.state == "completed"


@pytest.mark.parametrize(
    "event",
    [
        TrialFinished(1, 0, "running", T0, 1.0, {}, 1.0),
        TrialResult(1, 0, 0, {"loss": "low"}),  # type: ignore[dict-item]
        TrialResult(1, 0, 0.5, {"loss": 1.0}),  # type: ignore[arg-type]
        TrialStarted(1, 1, {"model": object()}, T0),
        TrialStarted(1, 1, {}, datetime(2024, 1, 1)),  # naive
        TrialFinished(1, 0, "completed", datetime(2024, 1, 1), 1.0, {}, 1.0),  # naive
    ],
    ids=["running-final", "str-metric", "float-step", "object-param", "naive-start", "naive-end"],
)
def test_invalid_events_are_refused(storage: Storage, event: Any) -> None:
    study = new_study(storage)
    assert study.id == 1
    storage.write([TrialStarted(study.id, 0, {}, T0)])
    with pytest.raises(StorageError) as info:
        storage.write([event])
    one_line(info.value)
    assert [t.state for t in storage.get_trials(study.id)] == ["running"]


def test_times_are_utc_aware_in_and_out(storage: Storage) -> None:
    study = new_study(storage)
    plus_two = timezone(timedelta(hours=2))
    started = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    storage.write(
        [
            TrialStarted(study.id, 0, {}, started),
            TrialFinished(study.id, 0, "completed", started + timedelta(hours=1), 3600.0, {}, 1),
        ]
    )
    trial = storage.get_trial(study.id, 0)
    assert trial.started_at == started and trial.started_at.utcoffset() == timedelta(0)
    assert trial.started_at.hour == 12 and trial.started_at.microsecond == 123456
    assert trial.finished_at is not None and trial.finished_at.utcoffset() == timedelta(0)
    assert trial.finished_at - trial.started_at == timedelta(hours=1)


def test_non_finite_values_round_trip(storage: Storage) -> None:
    study = new_study(storage, mode="min")
    inf, nan = math.inf, math.nan
    storage.write(
        [
            TrialStarted(study.id, 0, {"x": inf}, T0),
            TrialResult(study.id, 0, 0, {"loss": inf, "acc": nan, "g": -inf}),
            TrialFinished(study.id, 0, "completed", T0, nan, {"loss": -inf, "acc": nan}, -inf),
        ]
    )
    run_trial(storage, study.id, 1, value=nan)
    run_trial(storage, study.id, 2, value=inf)

    first = storage.get_trial(study.id, 0)
    assert first.params == {"x": inf}
    assert first.metrics["loss"] == -inf and first.metrics["g"] == -inf
    assert math.isnan(first.metrics["acc"])
    assert first.value == -inf
    assert first.duration_s is None  # NaN duration: not known
    curves = storage.get_intermediate(study.id)[0]
    assert curves["loss"] == [(0, inf)] and curves["g"] == [(0, -inf)]
    assert math.isnan(curves["acc"][0][1])
    # A NaN value cannot be ranked: it is stored as "no value", the metric keeps the NaN.
    second = storage.get_trial(study.id, 1)
    assert second.value is None and math.isnan(second.metrics["loss"])
    assert storage.get_trial(study.id, 2).value == inf

    best = storage.best_trial(study.id)
    assert best is not None and best.number == 0
    (summary,) = storage.list_studies()
    assert summary.best_value == -inf
    maximise = new_study(storage, "max", mode="max")
    run_trial(storage, maximise.id, 0, value=nan)
    run_trial(storage, maximise.id, 1, value=1.0)
    best = storage.best_trial(maximise.id)
    assert best is not None and best.number == 1  # NaN is never the maximum


# ---------------------------------------------------------------------- opening


def test_read_only_storage_reads_but_refuses_every_write(storage_url: str) -> None:
    with Storage(storage_url) as writer:
        study = new_study(writer, "s")
        run_trial(writer, study.id, 0, value=1.0, curve=[2.0, 1.0])
        run_trial(writer, study.id, 1, state=None)
        counts = row_counts(writer)

    reader = Storage(storage_url, read_only=True)
    try:
        assert reader.get_study("s") == study
        assert [t.number for t in reader.get_trials(study.id)] == [0, 1]
        assert reader.get_intermediate(study.id) == {0: {"loss": [(0, 2.0), (1, 1.0)]}}
        assert reader.list_studies()[0].trial_counts["completed"] == 1
        writes = [
            lambda: new_study(reader, "t"),
            lambda: reader.write([TrialStarted(study.id, 2, {}, T0)]),
            lambda: reader.write([TrialResult(study.id, 1, 0, {"loss": 1.0})]),
            lambda: reader.set_study_status(study.id, "running"),
            lambda: reader.heartbeat(study.id),
            lambda: reader.request_stop("s"),
            lambda: reader.clear_stop_request(study.id),
            lambda: reader.mark_running_trials(study.id, "failed", "x"),
            lambda: reader.delete_study("s"),
            lambda: reader.import_trials(study.id, [imported(5)]),
        ]
        for call in writes:
            with pytest.raises(StorageError, match="read-only") as info:
                call()
            one_line(info.value)
        # The database itself refuses too, not only the Storage API.
        with pytest.raises(DBAPIError), reader._engine.begin() as conn:
            conn.execute(text("DELETE FROM trials"))
    finally:
        reader.close()
    with Storage(storage_url) as check:
        assert row_counts(check) == counts


def test_a_read_only_storage_follows_a_live_writer(storage_url: str) -> None:
    """The dashboard reads while the driver writes (SQLite: a WAL reader in mode=ro)."""
    with Storage(storage_url) as writer:
        study = new_study(writer, "live")
        run_trial(writer, study.id, 0, state=None, curve=[1.0])
        with Storage(storage_url, read_only=True) as reader:
            assert reader.get_trial(study.id, 0).state == "running"
            run_trial(writer, study.id, 1, value=0.5, curve=[0.9, 0.5])
            writer.write([TrialResult(study.id, 0, 1, {"loss": 0.8})])
            assert [t.steps for t in reader.get_trials(study.id)] == [2, 2]
            best = reader.best_trial(study.id)
            assert best is not None and best.number == 1


def test_read_only_open_of_a_database_without_tuner_tables_fails(storage_url: str) -> None:
    if storage_url.startswith("sqlite:///"):
        path = storage_url.removeprefix("sqlite:///")
        with pytest.raises(StorageError) as missing:
            Storage(storage_url, read_only=True)  # no file at all
        assert path in one_line(missing.value)
        open(path, "wb").close()  # an empty database
    with pytest.raises(StorageError) as info:
        Storage(storage_url, read_only=True)
    assert "no tuner tables" in one_line(info.value)
    with pytest.raises(StorageError):  # and it created none
        Storage(storage_url, read_only=True)


def test_reopening_sees_everything(storage_url: str) -> None:
    with Storage(storage_url) as first:
        study = new_study(first, "durable")
        run_trial(first, study.id, 0, value=1.0, curve=[3.0, 2.0], params={"a": 1, "b": "x"})
        run_trial(first, study.id, 1, state=None, curve=[4.0])
        first.request_stop("durable")
        trials = first.get_trials(study.id)
        curves = first.get_intermediate(study.id)
        summaries = first.list_studies()
    with Storage(storage_url) as second:
        assert second.get_trials(study.id) == trials
        assert second.get_intermediate(study.id) == curves
        assert second.list_studies() == summaries
        assert second.is_stop_requested(study.id)


def test_opening_a_migrated_database_does_not_migrate_again(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Storage(storage_url) as first:
        new_study(first, "kept")
    from alembic import command

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("upgrade ran on a migrated database")

    monkeypatch.setattr(command, "upgrade", refuse)
    for _ in range(2):
        with Storage(storage_url) as again:
            assert [s.study.name for s in again.list_studies()] == ["kept"]
            with again._engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert len(versions) == 1


def test_two_storages_opening_a_new_database_at_once(storage_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_create(name: str) -> None:
        try:
            with Storage(storage_url) as storage:
                new_study(storage, name)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=open_and_create, args=(f"s{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Storage(storage_url) as storage:
        assert sorted(s.study.name for s in storage.list_studies()) == ["s0", "s1", "s2"]


# ---------------------------------------------------------------------- threads


def test_a_writer_thread_and_a_reader_thread_share_one_storage(storage: Storage) -> None:
    study = new_study(storage)
    trials, steps = 40, 10
    failures: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for number in range(trials):
                run_trial(storage, study.id, number, value=float(number), curve=[1.0] * steps)
        except BaseException as e:  # reported below
            failures.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while not done.is_set() or not seen or seen[-1] < trials:
        current = storage.get_trials(study.id)
        curves = storage.get_intermediate(study.id)
        # Each batch is atomic: a visible trial is complete, with all its steps.
        assert all(t.state == "completed" and t.steps == steps for t in current)
        assert all(len(curves[t.number]["loss"]) == steps for t in current)
        summary = storage.list_studies()[0]
        assert summary.trial_counts["completed"] >= len(current)
        seen.append(len(current))
        if failures:
            break
    thread.join()
    assert failures == []
    assert seen == sorted(seen) and seen[-1] == trials
    best = storage.best_trial(study.id)
    assert best is not None and best.number == 0


# ---------------------------------------------------------------------- states as enums


def test_records_carry_state_enums_stored_as_their_values(storage: Storage) -> None:
    study = new_study(storage)
    assert study.status is StudyState.CREATED
    storage.set_study_status(study.id, StudyState.RUNNING)
    run_trial(storage, study.id, 0, state=TrialState.PRUNED.value, curve=[1.0])
    run_trial(storage, study.id, 1, state=None)
    storage.mark_running_trials(study.id, TrialState.STOPPED, "stopped by the user")

    assert storage.get_study_by_id(study.id).status is StudyState.RUNNING
    states = [t.state for t in storage.get_trials(study.id)]
    assert states == [TrialState.PRUNED, TrialState.STOPPED]
    assert all(type(s) is TrialState for s in states)
    # Plain strings still select and compare: the stored value is "stopped".
    (stopped,) = storage.get_trials(study.id, ["stopped"])
    assert stopped.state == "stopped" and stopped.number == 1
    counts = storage.list_studies()[0].trial_counts
    assert counts[TrialState.PRUNED] == 1 and counts["stopped"] == 1
    assert set(counts) == set(TrialState)
    with storage._engine.connect() as conn:
        stored = conn.execute(text("SELECT state FROM trials ORDER BY number")).scalars().all()
    assert stored == ["pruned", "stopped"]


def test_an_unknown_state_is_refused(storage: Storage) -> None:
    study = new_study(storage)
    with pytest.raises(StorageError, match="status must be one of"):
        storage.set_study_status(study.id, "paused")
    with pytest.raises(StorageError, match="trial states must be among"):
        storage.get_trials(study.id, ["done"])


# ---------------------------------------------------------------------- update_study


def test_update_study_sets_columns_by_id_or_name(storage: Storage) -> None:
    study = new_study(storage)
    other = new_study(storage, "other")
    update_study(storage._db, "study", "request a stop", stop_requested=True)
    update_study(storage._db, study.id, "set a heartbeat", heartbeat_at=T0)
    read = storage.get_study("study")
    assert read.stop_requested and read.heartbeat_at == T0
    untouched = storage.get_study("other")
    assert not untouched.stop_requested and untouched.heartbeat_at is None
    assert untouched == other


def test_update_study_refuses_missing_studies_and_fixed_columns(storage: Storage) -> None:
    study = new_study(storage)
    with pytest.raises(StudyNotFoundError, match="no study named 'nope'"):
        update_study(storage._db, "nope", "request a stop", stop_requested=True)
    with pytest.raises(StudyNotFoundError, match="no study with id 999"):
        update_study(storage._db, 999, "set a heartbeat", heartbeat_at=T0)
    with pytest.raises(StorageError, match="updatable columns") as info:
        update_study(storage._db, study.id, "rename it", name="renamed")
    one_line(info.value)
    with pytest.raises(StorageError, match="updatable columns"):
        update_study(storage._db, study.id, "do nothing")
    assert storage.get_study_by_id(study.id) == study


# ---------------------------------------------------------------------- import_trials


def test_imported_trials_read_back_as_if_written_event_by_event(storage: Storage) -> None:
    study = new_study(storage)
    assert storage.import_trials(study.id, (imported(n) for n in range(5)), batch_size=2) == 5

    trials = storage.get_trials(study.id)
    assert [t.number for t in trials] == list(range(5))
    first = trials[0]
    assert first.state is TrialState.COMPLETED and first.value == 0.5
    assert first.params == {"booster": "dart", "lr": 0.1}
    assert first.metrics == {"loss": 0.5, "acc": 0.9}  # final metrics win over curves
    assert first.steps == 3 and first.node == "node-1"
    assert first.started_at == T0 and first.finished_at == T0 + timedelta(seconds=1)
    assert storage.get_intermediate(study.id, [0]) == {
        0: {"acc": [(0, 0.1), (2, 0.9)], "loss": [(0, 2.0), (1, 1.0), (2, 0.5)]}
    }
    assert storage.best_trial(study.id) == first
    assert storage.next_trial_number(study.id) == 5
    assert storage.list_studies()[0].trial_counts["completed"] == 5


def test_an_import_refuses_a_used_number_and_keeps_earlier_batches(storage: Storage) -> None:
    study = new_study(storage)
    run_trial(storage, study.id, 3, value=9.0)
    with pytest.raises(StorageError, match=r"trial 3 of study \d+ was already started") as info:
        storage.import_trials(study.id, [imported(n) for n in range(5)], batch_size=2)
    one_line(info.value)
    # Batch [0, 1] was written; batch [2, 3] was refused whole; 4 never came.
    assert [t.number for t in storage.get_trials(study.id)] == [0, 1, 3]
    assert storage.get_trial(study.id, 3).value == 9.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"state": TrialState.RUNNING}, "state must be one of"),
        ({"curves": {"loss": [(0, "low")]}}, "must be a number"),
        ({"curves": {"loss": [(0.5, 1.0)]}}, "step must be an int"),
        ({"finished_at": datetime(2024, 5, 1)}, "timezone-aware"),
        ({"params": {"lr": object()}}, "parameter 'lr'"),
    ],
)
def test_an_invalid_import_writes_nothing(
    storage: Storage, changes: dict[str, Any], message: str
) -> None:
    study = new_study(storage)
    with pytest.raises(StorageError, match=message):
        storage.import_trials(study.id, [imported(0), imported(1, **changes)])
    assert storage.get_trials(study.id) == []


def test_an_import_into_a_missing_study_says_so(storage: Storage) -> None:
    with pytest.raises(StorageError, match="no study with id 42"):
        storage.import_trials(42, [imported(0)])


def test_trial_output_is_appended_per_attempt_bounded_and_kept_after_the_end(
    storage: Storage,
) -> None:
    from tuner._output import OUTPUT_LIMIT
    from tuner.storage import TrialOutput, TrialRetried

    study = new_study(storage)
    storage.write(
        [
            TrialStarted(study.id, 0, {"lr": 0.1}, T0),
            TrialOutput(study.id, 0, 1, "epoch 0\n"),
            TrialResult(study.id, 0, 0, {"loss": 1.0}),
        ]
    )
    storage.write([TrialOutput(study.id, 0, 1, "épock 1 ✓\n")])  # a batch of output only
    storage.write([TrialRetried(study.id, 0, 2, "worker died"), TrialOutput(study.id, 0, 2, "a")])
    storage.write(
        [
            TrialOutput(study.id, 0, 2, "b" * OUTPUT_LIMIT),
            TrialFinished(study.id, 0, "failed", T0, 1.0, {}, None, "ValueError: x"),
        ]
    )
    # What a trial wrote after its last report arrives once it has finished.
    storage.write([TrialOutput(study.id, 0, 2, "the end\n")])
    first, second = storage.trial_output(study.id, 0)
    assert (first.attempt, first.text, first.truncated) == (1, "epoch 0\népock 1 ✓\n", False)
    assert second.attempt == 2 and second.truncated
    assert second.text.endswith("b" * 100 + "the end\n")
    assert len(second.text.encode()) == OUTPUT_LIMIT
    assert storage.get_trial(study.id, 0).state == "failed"  # output is not an outcome

    run_trial(storage, study.id, 1)
    assert storage.trial_output(study.id, 1) == []
    with pytest.raises(StorageError, match="no trial number 7"):
        storage.trial_output(study.id, 7)
    with pytest.raises(StorageError, match="never started"):
        storage.write([TrialOutput(study.id, 9, 1, "x")])
    storage.delete_study(study.name)  # the output goes with its trials
    with storage._engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM trial_outputs")).scalar_one() == 0
