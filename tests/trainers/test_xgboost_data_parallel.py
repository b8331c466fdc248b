"""Data-parallel xgboost trials on Ray Train worker groups, on the session's local Ray."""

from __future__ import annotations

import copy
import itertools
import time

import numpy as np
import pytest

import tuner
from tuner.data import load_dataset
from tuner.exceptions import SpecError
from tuner.spec import load_spec
from tuner.trainers import _xgboost_dp

pytestmark = pytest.mark.integration

DATASET = {"source": "synthetic", "n_rows": 4000, "n_features": 10, "seed": 0}


def spec(name, workers=2, **changes):
    data = {
        "name": name,
        "metric": "valid_logloss",
        "mode": "min",
        "trainer": {
            "kind": "xgboost",
            "num_workers": workers,
            "max_rounds": 12,
            "dataset": DATASET,
        },
        "search_space": {
            "eta": {"type": "float", "values": [0.3]},
            "max_depth": {"type": "int", "values": [4]},
        },
        "search": {"algorithm": "grid", "max_concurrent": 2},
    }
    data.update(changes)
    return data


def run(data, storage):
    return tuner.create_study(copy.deepcopy(data), storage=storage).run(progress=False)


@pytest.fixture(scope="module")
def asha_study(ray_local, tmp_path_factory):
    """One data-parallel study for the tests below (a worker group's start costs 15-25 s
    on 2 cores): a grid of four etas and a bad booster, under ASHA."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dp') / 'tuner.db'}"
    data = spec(
        "dp-asha",
        search_space={
            "eta": {"type": "float", "values": [0.001, 0.3, 0.01, 0.5]},
            "max_depth": {"type": "int", "values": [4]},
            "booster": {"type": "categorical", "choices": ["gbtree", "no-such-booster"]},
        },
        early_stopping={"scheduler": "asha", "grace_period": 2, "reduction_factor": 2},
    )
    return run(data, url)


def test_two_workers_train_one_model_on_all_the_data(asha_study, sqlite_url):
    study = asha_study
    # eta 0.3 is the second best of the four at every rung: ASHA (halving) keeps it.
    params = {"eta": 0.3, "max_depth": 4, "booster": "gbtree"}
    (trial,) = [t for t in study.trials() if t.params == params]
    assert trial.state == "completed", trial
    assert trial.metrics["workers"] == 2
    assert trial.metrics["rounds"] == 12 and trial.steps == 12
    # Every round reached the study, so early stopping could act after any of them.
    curve = study.intermediate([trial.number])[trial.number]["valid_logloss"]
    assert [s for s, _ in curve] == list(range(1, 13))
    # One model on all the data: the same loss as training in one process on all of it
    # (two workers that each fit half would not agree to this precision).
    same = {
        "eta": {"type": "float", "values": [0.3]},
        "max_depth": {"type": "int", "values": [4]},
        "booster": {"type": "categorical", "choices": ["gbtree"]},
    }
    one = run(spec("dp-one", workers=1, search_space=same), sqlite_url).trials()
    assert [t.params for t in one] == [params]
    assert trial.value == pytest.approx(one[0].value, abs=0.01)
    # Rank 0's booster is the trial's model (the default store beside the database),
    # with a checkpoint every 10 rounds on the way.
    booster = trial.load_model()
    assert booster.num_boosted_rounds() == 12
    assert [(a.kind, a.step) for a in study.artifacts(trial.number)] == [("model", 12)]


def test_workers_hold_disjoint_shards_that_cover_the_data(ray_local):
    data = load_dataset(load_spec(spec("dp-shards")).trainer.dataset)
    groups = _xgboost_dp.WorkerGroups(
        data,
        num_workers=2,
        cpus_per_worker=1,
        params={"objective": "binary:logistic", "eval_metric": "logloss", "verbosity": 0},
        max_rounds=3,
        max_concurrent=1,
    )
    import ray

    try:
        assert groups.start() == 1  # 2 CPUs: room for one group of two workers
        dispatcher = groups.dispatcher
        ray.get(dispatcher.submit.remote("job-1", {"eta": 0.3}))
        deadline = time.monotonic() + 120
        state = "pending"
        rows: list = []
        while state in ("pending", "running") and time.monotonic() < deadline:
            new, state, error, model = ray.get(dispatcher.poll.remote("job-1", len(rows)))
            rows += new
        assert state == "done", error
        assert [r for r, _, _ in rows] == [1, 2, 3]
        assert model is None  # a job without a checkpoint plan sends no booster
        workers = ray.get(dispatcher.workers.remote())
    finally:
        groups.close()
    assert [w["rank"] for w in workers] == [0, 1]
    assert len({w["pid"] for w in workers}) == 2  # two processes
    n = len(data.X_train)
    ranges = [(w["row_start"], w["row_end"]) for w in workers]
    assert ranges[0][0] == 0 and ranges[0][1] == ranges[1][0] and ranges[1][1] == n
    for w in workers:
        expected = data.X_train[w["row_start"] : w["row_end"]].sum(dtype=np.float64)
        assert w["rows"] == w["row_end"] - w["row_start"] > 0
        assert w["checksum"] == pytest.approx(float(expected))


def test_early_stopping_cuts_rounds_and_a_bad_config_fails_only_its_trial(asha_study):
    trials = asha_study.trials()
    failed = [t for t in trials if t.state == "failed"]
    assert {t.params["booster"] for t in failed} == {"no-such-booster"}
    assert all("no-such-booster" in (t.error or "") for t in failed)
    ok = [t for t in trials if t.params["booster"] == "gbtree"]
    assert {t.state for t in ok} <= {"completed", "pruned"} and len(ok) == 4
    pruned = [t for t in ok if t.state == "pruned"]
    assert pruned, "ASHA pruned nothing"
    for t in pruned:
        assert t.steps < 12 and t.metrics["rounds"] == t.steps
    assert all(t.steps == 12 for t in ok if t.state == "completed")


def test_more_workers_than_the_cluster_has_is_one_clear_error(ray_local, sqlite_url):
    with pytest.raises(SpecError, match=r"8 workers x 1 CPUs need 8 CPUs; the cluster has 2"):
        run(spec("dp-too-many", workers=8), sqlite_url)


def test_auto_workers_grows_with_the_data():
    gib = 1 << 30
    assert _xgboost_dp.auto_workers(10_000, max_workers=8) == 1
    assert _xgboost_dp.auto_workers(gib, max_workers=8) == 1
    assert _xgboost_dp.auto_workers(3 * gib + 1, max_workers=8) == 4
    assert _xgboost_dp.auto_workers(100 * gib, max_workers=8) == 8


def test_shard_ranges_are_disjoint_and_cover_every_row():
    for rows, n in [(10, 3), (7, 7), (1_000_001, 4)]:
        ranges = _xgboost_dp.shard_ranges(rows, n)
        assert ranges[0][0] == 0 and ranges[-1][1] == rows
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


def test_a_trial_whose_worker_dies_runs_again_on_the_restarted_group(ray_local, sqlite_url):
    import os
    import signal
    import threading

    import ray

    data = spec(
        "dp-crash",
        trainer={
            "kind": "xgboost",
            "num_workers": 2,
            # Rounds of about 0.1 s on 2 cores: the kill at round 5 lands 3 s or more
            # before the trial would end (each round costs three times: two attempts and
            # the second trial, besides the group's two starts of 15-25 s).
            "max_rounds": 40,
            "params": {"max_depth": 8},
            "dataset": {**DATASET, "n_rows": 20_000, "n_features": 20},
        },
        search_space={"eta": {"type": "float", "values": [0.01, 0.02]}},
        search={"algorithm": "grid", "max_concurrent": 1},
    )
    study = tuner.create_study(copy.deepcopy(data), storage=sqlite_url)
    killed: list[int] = []

    def kill_a_worker_mid_trial() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            trials = study.trials()
            if trials and trials[0].state == "running" and trials[0].steps >= 5:
                break
            time.sleep(0.05)
        actors = ray.util.list_named_actors(all_namespaces=True)
        name = next(a["name"] for a in actors if a["name"].startswith("tuner-dispatcher-"))
        dispatcher = ray.get_actor(
            name, namespace=next(a["namespace"] for a in actors if a["name"] == name)
        )
        worker = ray.get(dispatcher.workers.remote())[-1]
        os.kill(worker["pid"], signal.SIGKILL)
        killed.append(worker["pid"])

    killer = threading.Thread(target=kill_a_worker_mid_trial, daemon=True)
    killer.start()
    study.run(progress=False)
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    first, second = study.trials()
    # A dead worker is not the objective's fault: the trial runs again (limits.max_retries,
    # default 1) on the restarted group, keeps its number and params, and its rounds
    # are those of the attempt that finished, not both attempts'.
    assert first.state == "completed" and first.attempts == 2, (first.state, first.error)
    assert any("worker group failed" in e for e in first.attempt_errors)
    assert first.steps == 40 and first.params == {"eta": 0.01}
    # Each round is recorded once: those up to the first attempt's last checkpoint (the
    # default store beside the database), then the second attempt's, which boosted on
    # from it (test_a_relay_boosts_on_from_the_booster_it_is_given shows that part).
    curve = study.intermediate([first.number])[first.number]["valid_logloss"]
    assert [step for step, _ in curve] == list(range(1, 41))
    assert second.state == "completed" and second.steps == 40 and second.attempts == 1


def test_a_failed_worker_group_says_why_not_only_that_it_failed():
    # Ray Train's own message is "Training failed due to worker errors:" and then a
    # traceback; the trial's error must carry the worker's exception instead.
    from ray.train import WorkerGroupError

    remote = RuntimeError(
        "Traceback (most recent call last):\n  File 'x.py', line 1\n"
        "xgboost.core.XGBoostError: Check failed: same CUDA device is not supported"
    )
    e = WorkerGroupError("[Rank 1 Error Snippet]: ...", {1: remote, 3: ValueError("later")})
    assert _xgboost_dp._cause(e) == (
        "worker 1: xgboost.core.XGBoostError: Check failed: same CUDA device is not supported"
    )
    assert _xgboost_dp._cause(RuntimeError("first line\nsecond")) == "first line"


def test_a_relay_boosts_on_from_the_booster_it_is_given(monkeypatch):
    """Rank 0's relay, in this process: rounds count on from the starting booster's,
    and a booster goes with every `every`-th round and the last (a scheduler stopping the
    trial at its budget ends it before its end mark, so that one is its model)."""
    from types import SimpleNamespace

    import ray

    from tuner.trainers._xgboost_common import matrices, train

    sent: list[tuple[int, bool]] = []

    def report(job_id, round_, metrics, raw=None):
        sent.append((round_, raw is not None))
        return False

    monkeypatch.setattr(ray, "get", lambda ref, **_: ref)
    dispatcher = SimpleNamespace(report=SimpleNamespace(remote=report))
    trainer = load_spec(spec("unit")).trainer
    data = load_dataset(trainer.dataset)
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "verbosity": 0}
    dtrain, dvalid = matrices(data.X_train, data.y_train, data.X_valid, data.y_valid, params, 1)
    start = train(params, dtrain, dvalid, 5, _xgboost_dp._Relay(dispatcher, "j", 0, 1, 0, 5, 12))
    assert sent == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    sent.clear()
    raw = bytes(start.save_raw("ubj"))
    relay = _xgboost_dp._Relay(dispatcher, "j", 0, 1, 5, 5, 12)
    booster = train(params, dtrain, dvalid, 7, relay, _xgboost_dp._booster(raw))
    assert sent == [(r, r in (10, 12)) for r in range(6, 13)]
    assert booster.num_boosted_rounds() == 12
