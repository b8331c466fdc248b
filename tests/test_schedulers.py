"""Early stopping with several objectives: MO-ASHA's decisions, without a Ray run."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuner.schedulers import SCHEDULERS, build_scheduler, promoted, rungs
from tuner.schedulers._mo_asha import MultiObjectiveASHA
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


def test_the_registry_and_the_spec_read_without_importing_ray():
    import subprocess
    import sys

    code = (
        "import sys, tuner.schedulers, tuner.spec\n"
        "tuner.spec.load_spec({'name': 'n', 'metric': 'loss',"
        " 'trainer': {'kind': 'python', 'function': 'm:f'},"
        " 'search_space': {'x': {'type': 'float', 'low': 0.0, 'high': 1.0}},"
        " 'early_stopping': {'scheduler': 'asha'}})\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_registry_says_which_take_several_objectives_and_which_have_rungs():
    several = {n for n, s in SCHEDULERS.items() if s.multi_objective}
    assert several == {"none", "fifo", "asha"}
    assert {n for n, s in SCHEDULERS.items() if s.rungs} == {"asha", "hyperband"}
    for name in set(SCHEDULERS) - several:
        with pytest.raises(Exception, match=f"{name} ranks trials on one metric"):
            mo_spec(scheduler=name)


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


def so_spec(**early_stopping):
    return load_spec(
        {
            "name": "so",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "m:f", "max_steps": 12},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "early_stopping": early_stopping,
        }
    )


def test_percentile_stops_a_trial_outside_the_best_share_of_the_others_best_so_far():
    rule = build_scheduler(
        so_spec(scheduler="percentile", grace_period=2, percentile=25, min_samples=3)
    )

    def loss(tid: str, step: int, value: float) -> str:
        return rule.on_trial_result(
            None, FakeTrial(tid), {"training_iteration": step, "loss": value}
        )

    for tid, curve in {"a": [5, 4, 3], "b": [5, 2, 2], "c": [6, 5, 4]}.items():
        for step, v in enumerate(curve, start=1):
            assert loss(tid, step, v) == CONTINUE  # fewer than 3 others to compare with
    assert loss("d", 1, 9) == CONTINUE  # inside the grace period
    # at step 2 the others' best so far are 4, 2, 5: the 25th percentile is 3
    assert loss("d", 2, 3.5) == STOP
    assert loss("e", 1, 9) == CONTINUE
    assert loss("e", 2, 2.5) == CONTINUE
    # e's best so far (2.5) counts, not its last report
    assert loss("e", 3, 7) == CONTINUE
    assert loss("e", 3, 7) == CONTINUE  # a repeated result is not judged again


def test_a_spec_refuses_bad_stopping_settings_in_one_line():
    from tuner.exceptions import SpecError

    for bad, message in [
        ({"scheduler": "percentile", "percentile": 100}, "percentile"),
        ({"patience": 0}, "patience"),
        ({"min_delta": -1}, "min_delta"),
        ({"trial_value": "mean"}, "trial_value"),
    ]:
        with pytest.raises(SpecError, match=message):
            so_spec(**bad)


def test_extrapolated_final_follows_the_shrinking_fall_per_doubling_of_the_steps():
    import math

    from tuner.schedulers import SHRINK_CAP, extrapolated_final

    # 1 + 1/step: the fall halves every doubling, and the estimate is the curve itself
    hyperbola = [1 + 1 / step for step in range(1, 9)]
    assert extrapolated_final(hyperbola, 64) == pytest.approx(1 + 1 / 64)
    assert extrapolated_final(hyperbola, 8) == hyperbola[-1]  # at the budget
    # a line against log(step) (the same fall every doubling) is followed at almost its
    # slope: each doubling left falls by SHRINK_CAP times the one before
    line = [5 - math.log(step) for step in range(1, 9)]
    fall = math.log(2)
    estimate = extrapolated_final(line, 32)  # two doublings left
    assert estimate == pytest.approx(line[-1] - fall * (SHRINK_CAP + SHRINK_CAP**2))
    assert 5 - math.log(32) < estimate < line[-1] - 1.8 * fall
    # flat or rising over the last doubling: no better than its last value
    assert extrapolated_final([3.0, 2.0, 2.0, 2.0], 16) == 2.0
    assert extrapolated_final([3.0, 2.0, 2.5, 3.0], 16) == 3.0
    assert extrapolated_final([9.0, 6.0, 4.0, 2.0, 2.0, 2.0, 2.0, 2.0], 16) == 2.0
    # a curve that has nearly flattened is not expected to fall much further; one still
    # falling steeply is expected to fall far
    flattening = extrapolated_final([9.0, 5.0, 3.0, 2.2, 2.1, 2.05, 2.02, 2.0], 64)
    steep = extrapolated_final([9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0, 5.5], 64)
    assert 1.9 < flattening < 2.0
    # (its fall grew, from 1 to 2 a doubling: taken as shrinking by SHRINK_CAP, 3 left)
    assert steep == pytest.approx(5.5 - 2 * (SHRINK_CAP + SHRINK_CAP**2 + SHRINK_CAP**3))


def test_extrapolate_stops_a_flattened_bad_curve_and_keeps_a_steep_one():
    rule = build_scheduler(so_spec(scheduler="extrapolate", grace_period=3, min_samples=2))

    def loss(tid: str, step: int, value: float) -> str:
        return rule.on_trial_result(
            None, FakeTrial(tid), {"training_iteration": step, "loss": value}
        )

    # nothing is judged before min_samples trials have ended on their own
    for step, v in enumerate([5, 4, 4, 4, 4], start=1):
        assert loss("early", step, v) == CONTINUE
    for tid, final in {"a": 1.0, "b": 1.2}.items():
        for step in range(1, 13):
            assert loss(tid, step, final + 1 / step**2) == CONTINUE
        rule.on_trial_complete(None, FakeTrial(tid), {})
    # inside the grace period: never judged, however bad
    assert loss("bad", 1, 9.0) == CONTINUE
    assert loss("bad", 2, 3.0) == CONTINUE
    # nor before its 4th report (two doublings of the steps)
    assert loss("bad", 3, 3.0) == CONTINUE
    # a flattened curve at 3 cannot reach the best final (1.0): stopped
    assert loss("bad", 4, 3.0) == STOP
    # far behind a and b at equal steps, but falling steeply: kept
    for step, v in enumerate([10.0, 6.0, 4.0, 3.0, 2.0, 2.0], start=1):
        assert loss("steep", step, v) == CONTINUE
    # once its falls shrink too fast to take it below the best final, it is stopped too
    assert loss("steep", 7, 2.0) == STOP
    # a curve heading below the best final goes on to the end
    for step, v in enumerate([4.0, 2.0, 1.1, 0.9, 0.9], start=1):
        assert loss("good", step, v) == CONTINUE


def test_extrapolate_with_the_default_grace_period_judges_a_curve_from_its_fourth_report():
    # grace_period defaults to 1; a first report alone is worse than any final, so a rule
    # that judged it would stop every trial at its first report
    rule = build_scheduler(so_spec(scheduler="extrapolate", min_samples=1))
    for step in range(1, 13):
        rule.on_trial_result(None, FakeTrial("done"), {"training_iteration": step, "loss": 1.0})
    rule.on_trial_complete(None, FakeTrial("done"), {})

    def loss(step: int, value: float) -> str:
        return rule.on_trial_result(
            None, FakeTrial("new"), {"training_iteration": step, "loss": value}
        )

    assert [loss(step, v) for step, v in enumerate([9.0, 6.0, 4.0], start=1)] == [CONTINUE] * 3
    assert loss(4, 4.0) == STOP  # flat over its last doubling, above the best final


def test_extrapolate_takes_one_objective():
    from tuner.exceptions import SpecError

    with pytest.raises(SpecError, match="extrapolate ranks trials on one metric"):
        mo_spec(scheduler="extrapolate")
