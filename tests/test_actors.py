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


class _Trial:
    def __init__(self, name: str, status: str = "PENDING") -> None:
        self.name, self.status = name, status


class _Controller:
    def __init__(self, trials: list[_Trial]) -> None:
        self.trials = trials

    def get_trials(self) -> list[_Trial]:
        return self.trials


def test_the_trial_just_suggested_is_started_first_and_only_then():
    """Ray Tune gives an ended trial's cached actor to the trial the scheduler chooses:
    the one just added (no actor of its own yet), not the oldest pending one (whose
    actor is starting); with nothing new, FIFO's choice stands."""
    from ray.tune.schedulers import FIFOScheduler

    from tuner.run._actors import ClaimCachedActor

    old, new = _Trial("old"), _Trial("new")
    controller = _Controller([_Trial("running", "RUNNING"), old])
    scheduler = ClaimCachedActor(FIFOScheduler())
    scheduler.on_trial_add(controller, old)  # type: ignore[arg-type]
    assert scheduler.choose_trial_to_run(controller) is old  # type: ignore[arg-type]

    controller.trials.append(new)
    scheduler.on_trial_add(controller, new)  # type: ignore[arg-type]
    assert scheduler.choose_trial_to_run(controller) is new  # type: ignore[arg-type]
    # A step later `new` has its own actor request, like `old`: FIFO decides again.
    assert scheduler.choose_trial_to_run(controller) is old  # type: ignore[arg-type]


def test_only_schedulers_that_start_trials_in_fifo_order_are_wrapped():
    from ray.tune.schedulers import AsyncHyperBandScheduler, HyperBandScheduler

    from tuner.run._actors import ClaimCachedActor, claim_cached_actors

    asha = AsyncHyperBandScheduler(metric="loss", mode="min")
    wrapped = claim_cached_actors(asha)
    assert isinstance(wrapped, ClaimCachedActor) and wrapped.scheduler is asha
    assert wrapped.metric == "loss"
    hyperband = HyperBandScheduler(metric="loss", mode="min")  # its own order: untouched
    assert claim_cached_actors(hyperband) is hyperband
