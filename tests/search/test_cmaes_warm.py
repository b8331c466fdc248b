"""CMA-ES warm-started from an earlier study's trials (WS-CMA-ES, tuner.search._cmaes),
driven as Ray Tune drives it (no Ray)."""

from __future__ import annotations

import logging
import math
import statistics
from typing import Any

import numpy as np
import pytest

from tests.search.test_multi_objective_search import Past
from tuner.search import build_searcher
from tuner.search._cmaes import WarmCmaEsSampler
from tuner.spec import load_spec

BEST = (0.8, 0.2)
XY = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "y": {"type": "float", "low": 0.0, "high": 1.0},
}


def cmaes_spec(
    seed: int = 0, space: dict[str, Any] | None = None, warm: bool = True, algorithm="cmaes"
):
    data: dict[str, Any] = {
        "name": "warm",
        "metric": "loss",
        "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
        "search_space": space or XY,
        "search": {"algorithm": algorithm, "seed": seed},
    }
    if warm:
        data["warm_start"] = {"study": "earlier"}
    return load_spec(data)


def loss(x: float, y: float) -> float:
    return (x - BEST[0]) ** 2 + (y - BEST[1]) ** 2


def earlier(n: int, seed: int, **extra: Any) -> list[Past]:
    """`n` finished trials of an earlier study, sampled at random, best at BEST."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 1, 2)
        out.append(Past({"x": x, "y": y, **extra}, value=loss(x, y), metrics={"loss": loss(x, y)}))
    return out


def first_distances(searcher: Any, n: int, prefix: str) -> list[float]:
    """Suggest and tell `n` trials one after another; each one's distance to BEST."""
    out = []
    for i in range(n):
        tid = f"{prefix}{i}"
        c = searcher.suggest(tid)
        searcher.on_trial_complete(tid, {"loss": loss(c["x"], c["y"]), "training_iteration": 1})
        out.append(math.dist((c["x"], c["y"]), BEST))
    return out


def test_a_warm_started_cmaes_begins_near_the_earlier_best_not_at_the_centre():
    # Before WS-CMA-ES, the earlier study's trials were added to CMA-ES's study, which it
    # ignores (it learns only from trials it sampled): warm began where cold began.
    warm_d, cold_d = [], []
    for seed in range(3):
        history = earlier(40, seed=100 + seed, old=3)  # a parameter not searched here
        warm_d += first_distances(build_searcher(cmaes_spec(seed), (), history), 6, "w")
        cold_d += first_distances(build_searcher(cmaes_spec(seed, warm=False)), 6, "c")
    # The first generation, the very first trial included, is drawn around the best
    # tenth of the earlier trials; cold CMA-ES starts at a random point, then the centre.
    assert statistics.mean(warm_d) < 0.35, warm_d
    assert max(warm_d[::6]) < 0.35, warm_d  # each study's first trial: no random start-up
    assert statistics.mean(warm_d) < 0.6 * statistics.mean(cold_d), (warm_d, cold_d)


def test_on_resume_own_trials_are_the_studys_and_warm_trials_only_its_start():
    own = [Past({"x": x, "y": 0.5}, value=loss(x, 0.5)) for x in (0.1, 0.3, 0.6)]
    warm = earlier(20, seed=1)
    searcher = build_searcher(cmaes_spec(), own, warm)
    assert [t.params["x"] for t in searcher.optuna_study.trials] == [0.1, 0.3, 0.6]
    sampler = searcher._sampler
    assert isinstance(sampler, WarmCmaEsSampler)
    assert len(sampler._source_trials) == 23  # its own 3 and the warm start's 20
    assert len(first_distances(searcher, 8, "r")) == 8
    # Too few own trials to start from (3 of the 10 needed): as before, the history is
    # told as trials of the study and CMA-ES starts cold.
    cold = build_searcher(cmaes_spec(warm=False), own)
    assert len(cold.optuna_study.trials) == 3
    assert type(cold._sampler).__name__ == "CmaEsSampler"


def test_a_resumed_cmaes_study_goes_on_near_its_best_not_from_the_centre():
    # CMA-ES keeps its state in the trials it sampled in the run that ended; told them
    # again on a resume, it used to start over from the centre (0.5, 0.5), 0.42 from
    # BEST. Its own earlier trials now set its starting distribution.
    resumed_d = []
    for seed in range(3):
        own = earlier(30, seed=200 + seed)
        searcher = build_searcher(cmaes_spec(seed, warm=False), own)
        assert len(searcher.optuna_study.trials) == 30  # still the study's trials
        resumed_d += first_distances(searcher, 6, "r")
    assert statistics.mean(resumed_d) < 0.35, resumed_d


def test_warm_trials_cmaes_cannot_use_are_left_out_in_one_warning_line(caplog):
    usable = earlier(12, seed=2)
    lacking = [Past({"x": 0.5}, value=0.1, metrics={"loss": 0.1}) for _ in range(3)]
    outside = [Past({"x": 1.5, "y": 0.5}, value=0.1, metrics={"loss": 0.1}) for _ in range(2)]
    pruned = [Past({"x": 0.5, "y": 0.5}, state="pruned", value=0.3, steps=2)]
    with caplog.at_level(logging.WARNING, logger="tuner.search._cmaes"):
        searcher = build_searcher(cmaes_spec(), (), [*usable, *lacking, *outside, *pruned])
    assert len(searcher._sampler._source_trials) == 12
    assert searcher.optuna_study.trials == []
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        "cmaes: 12 of 18 warm-start trials set its starting distribution; left out: 3 lack "
        "parameter y (warm_start.fixed can give the value they ran with), 2 have a value "
        "outside this search space (e.g. {'x': 1.5, 'y': 0.5}), 1 did not complete with a "
        "value"
    )


def test_fewer_than_ten_usable_warm_trials_start_cold_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tuner.search._cmaes"):
        searcher = build_searcher(cmaes_spec(), (), earlier(9, seed=3))
    assert type(searcher._sampler).__name__ == "CmaEsSampler"
    assert searcher.optuna_study.trials == []
    assert "9 of 9 warm-start trials usable, fewer than the 10" in caplog.text
    assert "this study starts cold" in caplog.text
    assert len(first_distances(searcher, 3, "c")) == 3


def test_warm_cmaes_over_a_conditional_space_samples_only_active_parameters():
    # CMA-ES searches x and y; booster (categorical) and rate (conditional) are sampled
    # independently, so trials with and without rate do not break the warm start.
    space = {
        **XY,
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
    }
    warm = []
    for i, p in enumerate(earlier(20, seed=4)):
        extra = {"booster": "dart", "rate": 0.1} if i % 2 else {"booster": "gbtree"}
        warm.append(Past({**p.params, **extra}, value=p.value, metrics=p.metrics))
    # A resume whose own trials all had rate: Optuna's default relative search space
    # (the parameters every finished trial has) would hold rate, which no source trial
    # cut to x and y matches ("No compatible source_trials" at the first suggestion).
    own = [
        Past({"x": x, "y": 0.5, "booster": "dart", "rate": 0.2}, value=loss(x, 0.5))
        for x in (0.2, 0.4)
    ]
    searcher = build_searcher(cmaes_spec(space=space), own, warm)
    assert len(searcher._sampler._source_trials) == 22  # its own 2 and the warm start's 20
    for i in range(14):
        c = searcher.suggest(str(i))
        assert ("rate" in c) == (c["booster"] == "dart")
        searcher.on_trial_complete(str(i), {"loss": loss(c["x"], c["y"]), "training_iteration": 1})
    assert [t.state.name for t in searcher.optuna_study.trials] == ["COMPLETE"] * 16


@pytest.mark.parametrize("algorithm", ["tpe", "random"])
def test_other_samplers_still_get_warm_trials_as_trials_of_their_study(algorithm):
    own = [Past({"x": 0.1, "y": 0.5}, value=loss(0.1, 0.5))]
    searcher = build_searcher(cmaes_spec(algorithm=algorithm), own, earlier(5, seed=5))
    assert len(searcher.optuna_study.trials) == 6
