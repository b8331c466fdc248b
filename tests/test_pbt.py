"""Population Based Training as lineage, on the session's local Ray: cut trials end as
pruned, new ones start from a top trial's checkpoint with mutated parameters and name it
as their parent; a trainer that saves no checkpoint is one clear error."""

from __future__ import annotations

import copy

import pytest

import tuner
from tuner.exceptions import SpecError

pytestmark = pytest.mark.integration

LR = {"type": "float", "low": 0.01, "high": 0.3, "log": True}


def spec(name, algorithm="pbt", **changes):
    data = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {
            "kind": "python",
            "function": "tests.objectives:lineage_toy",
            "max_steps": 16,
        },
        "search_space": {"lr": LR},
        "search": {
            "algorithm": algorithm,
            "population": 4,
            "perturbation_interval": 4,
            "max_concurrent": 4,
            "seed": 3,
        },
        "resources": {"cpus_per_trial": 0.5},  # the whole population at once on 2 CPUs
    }
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def pbt_study(ray_local, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('pbt') / 'pbt.db'}"
    return tuner.create_study(copy.deepcopy(spec("pbt")), storage=url).run(progress=False)


def test_children_start_from_their_parents_checkpoints(pbt_study):
    trials = {t.number: t for t in pbt_study.trials()}
    children = [t for t in trials.values() if t.parent is not None]
    assert children, "no trial was ever cut and replaced"
    assert not [t for t in trials.values() if t.state == "failed"]  # every restore read
    curves = pbt_study.intermediate()
    for child in children:
        parent = trials[child.parent]
        assert child.number > parent.number
        start = int(child.metrics["from_step"])
        assert start > 0  # from the donor's checkpoint, not from step 0
        # It began where its parent was at the checkpoint's step.
        parent_x = dict(curves[parent.number]["loss"])[start - 1] ** 0.5
        assert child.metrics["x0"] == pytest.approx(parent_x, rel=1e-9)
        assert curves[child.number]["loss"][0][0] == start
    for t in trials.values():
        assert 0.01 <= t.params["lr"] <= 0.3  # mutations stay in range
    cut = [t for t in trials.values() if t.state == "pruned"]
    assert len(cut) == len(children)  # each cut trial's place went to one child
    assert {t.state for t in trials.values()} <= {"completed", "pruned"}
    # The whole population reached the budget: every line ends at step 15.
    assert sum(t.state == "completed" for t in trials.values()) == 4


def test_pbt_keeps_the_best_models_and_exports_parents(pbt_study):
    kept = [a for a in pbt_study.artifacts() if a.kind == "model"]
    best = sorted((t for t in pbt_study.trials() if t.state == "completed"), key=lambda t: t.value)[
        :3
    ]
    assert {a.number for a in kept} == {t.number for t in best}
    assert not [a for a in pbt_study.artifacts() if a.kind == "checkpoint"]


def test_pb2_runs_a_lineage_too(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'pb2.db'}"
    study = tuner.create_study(copy.deepcopy(spec("pb2", "pb2")), storage=url).run(progress=False)
    trials = study.trials()
    assert any(t.parent is not None for t in trials)
    assert {t.state for t in trials} <= {"completed", "pruned"}
    assert all(0.01 <= t.params["lr"] <= 0.3 for t in trials)


def test_a_trainer_without_checkpoints_is_one_error_at_the_first_comparison(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'nock.db'}"
    data = spec(
        "nock",
        trainer={"kind": "python", "function": "tests.objectives:steady", "max_steps": 10},
        search_space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
    )
    with pytest.raises(SpecError, match=r"needs checkpoints, and the trainer saved none"):
        tuner.create_study(copy.deepcopy(data), storage=url).run(progress=False)
    assert tuner.load_study("nock", storage=url).status == "failed"


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"early_stopping": {"scheduler": "asha"}}, "early_stopping.scheduler"),
        ({"search": {"algorithm": "pbt", "perturbation_interval": 16}}, "perturbation_interval"),
        (
            {"objectives": [{"metric": "loss"}, {"metric": "x0"}], "metric": None},
            "search.algorithm",
        ),
    ],
)
def test_bad_pbt_specs_are_one_line(changes, where):
    data = spec("bad")
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data.pop("mode") if "objectives" in data else None
    with pytest.raises(SpecError, match=where):
        tuner.load_spec(data)


def test_a_trial_is_ranked_at_its_step_against_the_others_values_there():
    """No Ray: the scheduler fed results by hand. The leader (lr small, ahead in steps)
    is judged at step 4 against what the others had at step 4, not their latest."""
    from types import SimpleNamespace

    from tuner._checkpoint import Restore
    from tuner._report import STEP_KEY
    from tuner.search._pbt import pbt as build

    spec_ = tuner.load_spec(spec("unit"))
    searcher = build(spec_)
    pop, scheduler = searcher.population, searcher.scheduler
    pop.latest = lambda tid: Restore(f"/ck/{tid}", 3, 4)
    pop.number = lambda tid: int(tid[1:])
    ids = [f"t{i}" for i in range(4)]
    for tid in ids:
        searcher.suggest(tid)

    def report(tid, step, loss):
        return scheduler.on_trial_result(
            None, SimpleNamespace(trial_id=tid), {"loss": loss, STEP_KEY: step}
        )

    # t0 runs ahead to step 8 while its loss at step 4 (9.0) is the worst there.
    for step, loss in enumerate([16, 14, 12, 10, 9, 1, 1, 1, 1]):
        assert report("t0", step, loss) == "CONTINUE"  # nobody else is at step 4 yet
    for step, loss in enumerate([16, 12, 8, 4, 2]):
        report("t1", step, loss)
    # Half of the population has reached step 4: t0 is found in the bottom there (9
    # against 2), and is cut at its next report, its place going to a child of t1.
    assert report("t0", 9, 1.0) == "STOP"
    [child] = pop.children
    assert (child.donor, child.parent, child.restore.uri) == ("t1", 1, "/ck/t1")
    assert 0.01 <= child.config["lr"] <= 0.3
