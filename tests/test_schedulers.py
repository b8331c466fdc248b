"""Early stopping with several objectives: MO-ASHA's decisions, without a Ray run."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuner.schedulers import MultiObjectiveASHA, build_scheduler, promoted, rungs
from tuner.spec import load_spec

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


@dataclass
class FakeTrial:
    trial_id: str


def mo_spec(**early_stopping):
    return load_spec(
        {
            "name": "mo",
            "objectives": [{"metric": "f1", "mode": "min"}, {"metric": "f2", "mode": "max"}],
            "trainer": {"kind": "python", "function": "m:f", "max_steps": 12},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "search": {"algorithm": "nsga2"},
            "early_stopping": early_stopping,
        }
    )


def report(scheduler, tid: str, step: int, f1: float, f2: float) -> str:
    result = {"training_iteration": step, "f1": f1, "f2": f2}
    return scheduler.on_trial_result(None, FakeTrial(tid), result)


def test_rungs_are_asha_milestones_below_the_budget():
    assert rungs(12, 2, 2) == [2, 4, 8]
    assert rungs(100, 1, 3) == [1, 3, 9, 27, 81]


def test_the_spec_picks_the_scheduler():
    assert isinstance(build_scheduler(mo_spec(scheduler="none")), FIFOScheduler)
    asha = build_scheduler(mo_spec(scheduler="asha", grace_period=2, reduction_factor=2))
    assert isinstance(asha, MultiObjectiveASHA)


def test_nondominated_asha_stops_a_dominated_trial_and_keeps_a_trade_off():
    asha = build_scheduler(mo_spec(scheduler="asha", grace_period=2, reduction_factor=2))
    assert report(asha, "a", 1, 9, 0) == CONTINUE  # before the first rung: never judged
    assert report(asha, "a", 2, 1.0, 5.0) == CONTINUE  # alone at the rung
    # b is worse on both objectives (f1 min, f2 max): stopped at the rung
    assert report(asha, "b", 2, 2.0, 4.0) == STOP
    # c trades f1 for f2: on the first front with a, and the crowding's extreme
    assert report(asha, "c", 2, 0.5, 1.0) == CONTINUE
    # a judged once per rung: later results below the next rung go on
    assert report(asha, "a", 3, 5.0, 0.0) == CONTINUE
    assert report(asha, "a", 12, 1.0, 5.0) == STOP  # the budget is reached


def test_scalarized_asha_ranks_by_the_weighted_sum():
    asha = build_scheduler(
        mo_spec(
            scheduler="asha",
            grace_period=2,
            reduction_factor=2,
            multi_objective="scalarized",
            weights=[1.0, 10.0],
        )
    )
    assert report(asha, "a", 2, 1.0, 1.0) == CONTINUE  # score 1 - 10 = -9
    # b is not dominated by a (better f1), but its weighted sum 0.5 - 0 is worse
    assert report(asha, "b", 2, 0.5, 0.0) == STOP
    # With a third trial between them, keeping 2 of 3: the weighted sum keeps a and e,
    # non-dominated sorting keeps the front's extremes a and b (crowding distance).
    rung = {"a": [1.0, -1.0], "e": [0.9, -0.9], "b": [0.5, 0.0]}
    assert not promoted(rung, "b", 2, "scalarized", [1.0, 10.0])
    assert promoted(rung, "e", 2, "scalarized", [1.0, 10.0])
    assert promoted(rung, "b", 2, "nondominated")
    assert not promoted(rung, "e", 2, "nondominated")


@pytest.mark.parametrize("missing", [{"f1": 1.0}, {"f1": 1.0, "f2": float("nan")}])
def test_a_result_without_every_objective_is_not_judged(missing):
    asha = build_scheduler(mo_spec(scheduler="asha", grace_period=1, reduction_factor=2))
    report(asha, "a", 1, 0.0, 9.0)
    result = {"training_iteration": 1, **missing}
    assert asha.on_trial_result(None, FakeTrial("b"), result) == CONTINUE
