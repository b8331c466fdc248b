"""Checkpoints on the session's local Ray: what a trial saves is stored, kept by
``artifacts.keep``, and a trial whose worker died goes on from its last checkpoint."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

import tuner
from tests.objectives import dies_once_marker

pytestmark = pytest.mark.integration


def spec(name, **changes):
    data = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {
            "kind": "python",
            "function": "tests.objectives:checkpointed",
            "max_steps": 10,
        },
        "search_space": {"x": {"type": "float", "values": [0.2, 0.5, -0.3, 0.9, 0.0]}},
        "search": {"algorithm": "grid", "max_concurrent": 2},
    }
    data.update(changes)
    return data


def files_under(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_dir() and p.name.startswith(("checkpoint-", "model-"))
    }


def test_keep_holds_the_best_models_and_nothing_else(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'ck.db'}"
    data = spec("keep", artifacts={"keep": 2})
    study = tuner.create_study(copy.deepcopy(data), storage=url).run(progress=False)
    trials = study.trials()
    assert {t.state for t in trials} == {"completed"}
    best_two = sorted(trials, key=lambda t: t.value)[:2]
    rows = study.artifacts()
    assert {(a.number, a.kind, a.step) for a in rows} == {(t.number, "model", 9) for t in best_two}
    # The default store lies beside the database; only the kept models are left in it.
    root = tmp_path / "ck-artifacts"
    assert files_under(root) == {f"keep/trial-{t.number:05d}/checkpoint-00000009" for t in best_two}
    for a in rows:
        assert a.bytes == (Path(a.uri) / "state.json").stat().st_size
    # Every trial ran once from scratch: no checkpoint to start from.
    assert all(t.metrics["from_step"] == 0 and t.metrics["trained"] == 10 for t in trials)
    # Deleting the study deletes its files too (what `tuner delete` does).
    assert study.delete() == []
    assert not (root / "keep").exists() and files_under(root) == set()


def test_a_dead_worker_goes_on_from_the_last_checkpoint(ray_local, tmp_path):
    x = 0.5
    marker = dies_once_marker(("checkpointed", x))
    if os.path.exists(marker):
        os.remove(marker)
    url = f"sqlite:///{tmp_path / 'retry.db'}"
    data = spec(
        "retry-ck",
        search_space={
            "x": {"type": "float", "values": [x]},
            "die_at": {"type": "int", "values": [7]},
        },
        limits={"max_retries": 1},
    )
    study = tuner.create_study(copy.deepcopy(data), storage=url).run(progress=False)
    [trial] = study.trials()
    assert (trial.state, trial.attempts) == ("completed", 2)
    # The second attempt started after the checkpoint of step 7 and trained 2 steps:
    # 10 steps trained in all plus the one lost, not 8 + 10.
    assert trial.metrics["from_step"] == 8 and trial.metrics["trained"] == 2
    curve = study.intermediate()[trial.number]["loss"]
    assert [step for step, _ in curve] == list(range(10))  # each step once
    assert trial.steps == 10


@pytest.mark.parametrize("storage_url", ["postgresql"], indirect=True)
def test_a_checkpoint_without_a_store_stops_the_study_with_one_line(ray_local, storage_url):
    data = spec("nostore", search_space={"x": {"type": "float", "values": [0.1, 0.2, 0.3]}})
    with pytest.raises(tuner.ReportError, match="this study has no artifacts store"):
        tuner.create_study(copy.deepcopy(data), storage=storage_url).run(progress=False)
    study = tuner.load_study("nostore", storage=storage_url)
    assert study.status == "stopped" and len(study.trials()) < 3  # not every trial


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("nosuch://bucket/x", "artifacts.store"),
        ("{tmp}/a-file/store", "artifacts.store"),  # under a file: cannot be written
    ],
)
def test_a_bad_store_is_one_line_before_any_trial_runs(ray_local, tmp_path, store, message):
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    data = spec("bad-store", artifacts={"store": store.format(tmp=tmp_path)})
    with pytest.raises(tuner.SpecError, match=message) as raised:
        tuner.create_study(copy.deepcopy(data), storage=url).run(progress=False)
    assert len(str(raised.value).splitlines()) == 1
    # Nothing ran: the study made for this run is removed, so the fixed spec runs as is.
    with pytest.raises(tuner.StudyNotFoundError):
        tuner.load_study("bad-store", storage=url)
