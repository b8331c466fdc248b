"""A study keeps its trial actors from trial to trial (tuner.run._actors, issue 20)."""

from __future__ import annotations

import pytest

import tuner

pytestmark = pytest.mark.integration


def test_a_study_starts_at_most_max_concurrent_plus_two_trial_actors(ray_local, sqlite_url):
    """32 trials of 50 ms, 4 in flight: each ends long before a new actor could start, so
    without care Ray Tune hands the ended trial's actor to a trial whose own actor is
    starting and stops that one, again and again (counted in Ray's actor table)."""
    from bench.bookkeeping import trial_actors

    spec = {
        "name": "actors",
        "metric": "loss",
        "trainer": {"kind": "python", "function": "tests.objectives:brief", "max_steps": 1},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": 32, "max_concurrent": 4, "seed": 0},
        "resources": {"cpus_per_trial": 0.5},
    }
    before = trial_actors()
    study = tuner.create_study(spec, storage=sqlite_url).run(progress=False)
    started = trial_actors() - before

    assert sum(t.state == "completed" for t in study.trials()) == 32
    assert 1 <= len(started) <= 4 + 2
