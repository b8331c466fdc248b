"""`python -m bench.quality --quick` on a tiny budget, so the script cannot rot."""

from __future__ import annotations

import pytest

from tests._optional import require


@pytest.mark.integration
def test_quick_quality_bench_writes_every_section_and_its_plots(tmp_path, monkeypatch, ray_local):
    require("cocoex")
    require("hyperopt")
    require("matplotlib")
    # `python -m bench.quality --quick --tiny --out FILE`, in this process: on the
    # session's Ray rather than a Ray of its own (a start costs seconds).
    from bench.quality.__main__ import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "RESULTS.md"
    main(["--quick", "--tiny", "--out", str(out)])
    text = out.read_text()
    for title in (
        "Quality, equal trial budgets",
        "Quality, equal wall time",
        "Quality with trials in flight",
        "Early stopping: final best and compute",
        "Warm start: trials saved",
    ):
        assert f"### {title}" in text
    assert "hyperopt-tpe" in text and "raytune-random" in text and "tuner-bohb" in text
    assert "auto→" in text  # auto says what it picked
    assert "| added+fixed |" in text  # a warm start over a space with one more parameter
    assert len(list((tmp_path / "plots").glob("quality-tiny-*.png"))) == 4


def test_every_seed_of_the_full_preset_has_its_bbob_instance():
    # Seed s is instance s+1, and the full preset runs 10 seeds; the suite's default
    # instance list stops at 5 (then 71-80), which once ended the full run at seed 5.
    from bench.quality.__main__ import PRESETS
    from bench.quality._problems import make

    seeds, _ = PRESETS["full"]
    values = {make(f"bbob-f21-d5-i{s + 1}").optimum for s in range(seeds)}
    assert len(values) == seeds  # ten different instances, each with its own optimum


@pytest.mark.integration
def test_the_stopping_replay_gives_what_the_ray_study_gives():
    # bench/quality/_sim.py stands in for the Ray benchmark when choosing a stopping
    # rule; that holds only while it calls the searcher and scheduler as Ray Tune does.
    from bench.quality._problems import make
    from bench.quality._sim import replay
    from bench.quality._ways import run_way

    problem = make("xgb-breast_cancer")
    way = "tuner-tpe+extrapolate+g5"
    ray = run_way(way, problem, seed=0, trials=8)
    sim = replay(way, problem, seed=0, trials=8)
    assert sum(ray.used) == sim["steps"]
    assert len(ray.used) - sum(ray.full) == len(sim["stops"]) > 0  # some were stopped
    assert min(x for x, full in zip(ray.losses, ray.full, strict=True) if full) == sim["best"]


def test_a_way_at_another_seed_is_that_seed_of_the_way_compared_at_its_own():
    # `tuner-tpe@1000` is read against `tuner-tpe` at the same seed (the noise floor of a
    # stopping rule's ratio), so it must run seed + 1000 and still be paired with seed.
    require("xgboost")
    from bench.quality._problems import make
    from bench.quality._sim import replay
    from bench.quality._ways import parse, trial_factor

    assert parse("tuner-tpe+asha*2@1000") == ("tuner", "tpe", 1, "asha")
    assert trial_factor("tuner-tpe+asha*2@1000") == 2
    problem = make("xgb-breast_cancer")
    shifted = replay("tuner-tpe+asha@7", problem, seed=0, trials=6)
    seventh = replay("tuner-tpe+asha", problem, seed=7, trials=6)
    zeroth = replay("tuner-tpe+asha", problem, seed=0, trials=6)
    assert shifted["seed"] == 0
    assert (shifted["best"], shifted["steps"]) == (seventh["best"], seventh["steps"])
    assert shifted["best"] != zeroth["best"]


def test_the_lazy_replay_gives_the_numbers_of_the_full_one():
    # --lazy trains a config only as far as its trial runs (how 10 seeds of the slow
    # problems fit in an hour); a stopping table must not change with it.
    require("xgboost")
    from bench.quality import _sim
    from bench.quality._problems import make

    problem = make("xgb-breast_cancer")
    _sim._CACHE.clear()
    lazy = _sim.replay("tuner-tpe+asha", problem, seed=1, trials=8, lazy=True)
    partial = [c for c in _sim._CACHE.values() if len(c) < problem.max_steps]
    assert partial  # the stopped trials were not trained to the end
    full = _sim.replay("tuner-tpe+asha", problem, seed=1, trials=8)
    assert lazy["stops"] == full["stops"] and lazy["stops"]
    assert (lazy["best"], lazy["steps"]) == (full["best"], full["steps"])


def test_the_rank_judges_follow_the_curves_they_model():
    # bench.quality._ranks asks where a study's winner stood at step r under each judge;
    # a fit that missed its own family would make that table say nothing.
    require("scipy")
    import math

    from bench.quality._ranks import _judges

    judges = _judges()
    decay = [0.1 + 2.0 * math.exp(-0.2 * t) for t in range(1, 21)]
    power = [1.0 + 1.0 / t for t in range(1, 21)]
    assert judges["exp fit"](decay, 100) == pytest.approx(0.1 + 2.0 * math.exp(-20), abs=1e-4)
    assert judges["power fit"](power, 100) == pytest.approx(1.01, abs=1e-4)
    assert judges["value"](power, 100) == power[-1]


def test_the_winner_is_ranked_among_its_studys_trials():
    require("xgboost")
    from bench.quality import _sim
    from bench.quality._problems import make
    from bench.quality._ranks import winner_ranks

    # Four trials: each costs ten curve fits (two fitted judges at five steps).
    ranks = winner_ranks("xgb-breast_cancer", seed=0, trials=4)
    assert set(ranks) >= {("value", 5), ("extrapolate", 50), ("power fit", 30)}
    assert all(1 <= rank <= 4 for rank in ranks.values())
    # the value judge at step 5 is the winner's place among the trials' 5th reports
    problem = make("xgb-breast_cancer")
    curves = [_sim.curve(problem, c) for c in _sim.replay("tuner-tpe", problem, 0, 4)["configs"]]
    winner = min(curves, key=lambda c: c[-1])
    assert ranks["value", 5] == 1 + sum(c[4] < winner[4] for c in curves)
