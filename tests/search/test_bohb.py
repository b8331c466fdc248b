"""search.algorithm: bohb: TPE fitted at Hyperband's rungs, learning from pruned trials."""

from __future__ import annotations

import optuna
import pytest

import tuner
from tuner.search._bohb import BOHBSampler, budgets


def budget_spec(grace_period: int, reduction_factor: float, max_steps: int):
    return tuner.load_spec(
        {
            "name": "b",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "m:f", "max_steps": max_steps},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "search": {"algorithm": "bohb"},
            "early_stopping": {
                "scheduler": "hyperband",
                "grace_period": grace_period,
                "reduction_factor": reduction_factor,
            },
        }
    )


def test_budgets_are_hyperbands_rungs_and_the_whole_budget():
    assert budgets(budget_spec(1, 3, 27)) == [1, 3, 9, 27]
    assert budgets(budget_spec(2, 3, 20)) == [2, 6, 18, 20]
    assert budgets(budget_spec(1, 1.1, 3)) == [1, 2, 3]  # rungs rounded down, once each


def test_the_model_moves_up_to_the_largest_budget_with_enough_results():
    sampler = BOHBSampler([1, 3, 9], seed=0, min_points=4)
    study = optuna.create_study(sampler=sampler)
    for i in range(12):
        trial = study.ask()
        x = trial.suggest_float("x", -1, 1)
        last = 9 if i % 4 == 0 else 1  # one in four gets the whole budget
        for step in range(1, last + 1):
            trial.report((x - 0.3) ** 2 + 1 / step, step)
        if last == 9:
            study.tell(trial, (x - 0.3) ** 2 + 1 / 9)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    fits = sampler.fits
    assert fits[0].budget == 1 and fits[0].observed == 4  # random until 4 results
    assert fits[0].from_pruned == 3
    assert fits[-1].budget == 1 and fits[-1].observed == 11  # only 3 got to 9
    # one more trial through the whole budget: now 4 results at budget 9
    trial = study.ask()
    study.tell(trial, (trial.suggest_float("x", -1, 1) - 0.3) ** 2)  # counted at 9 only
    study.ask().suggest_float("x", -1, 1)
    assert sampler.fits[-1].budget == 9 and sampler.fits[-1].observed == 4


@pytest.mark.integration
@pytest.mark.usefixtures("ray_local")
def test_bohb_runs_through_ray_and_fits_on_pruned_trials(monkeypatch, sqlite_url):
    made: list[BOHBSampler] = []
    init = BOHBSampler.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(BOHBSampler, "__init__", recording_init)
    study = tuner.create_study(
        {
            "name": "bohb",
            "metric": "loss",
            "trainer": {
                "kind": "python",
                "function": "tests.objectives:quadratic",
                "max_steps": 12,
            },
            "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
            "search": {"algorithm": "bohb", "num_trials": 14, "max_concurrent": 2, "seed": 0},
            # asha: one bracket, so most trials stop at rungs 1 and 3 and the model is
            # fitted there (hyperband draws brackets at random, unseeded, in Ray)
            "early_stopping": {"scheduler": "asha", "grace_period": 1},
        },
        storage=sqlite_url,
    ).run()
    states = [t.state for t in study.trials()]
    assert len(states) == 14 and "pruned" in states
    (sampler,) = made
    assert sampler.fits, "the model was never fitted"
    assert any(f.from_pruned > 0 for f in sampler.fits)  # pruned trials' results were used
