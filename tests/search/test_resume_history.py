"""A resumed study's searcher goes on from its history instead of starting over."""

from __future__ import annotations

from typing import Any

import pytest

from tests._optional import require
from tests.search.test_search import Past, make_spec
from tuner.search import build_searcher, grid_points

SPACE = {"x": {"type": "float", "low": -1.0, "high": 1.0}}
OPTIMUM = 0.3


def loss(x: float) -> float:
    return (x - OPTIMUM) ** 2


def drive(searcher: Any, n: int, prefix: str) -> list[float]:
    """Suggest, evaluate and tell `n` trials one after another; their x values."""
    xs = []
    for i in range(n):
        tid = f"{prefix}{i}"
        x = searcher.suggest(tid)["x"]
        searcher.on_trial_complete(tid, {"loss": loss(x), "training_iteration": 1})
        xs.append(x)
    return xs


def spread(xs: list[float]) -> float:
    return sum(abs(x - OPTIMUM) for x in xs) / len(xs)


@pytest.mark.parametrize("algorithm", ["tpe", "gp"])
def test_study_killed_after_20_of_40_resumes_where_it_was(algorithm: str) -> None:
    if algorithm == "gp":
        require("torch")  # gp needs it
    spec = make_spec(SPACE, algorithm, num_trials=40, seed=0)
    uninterrupted = build_searcher(spec)
    first = drive(uninterrupted, 20, "a")
    later = drive(uninterrupted, 10, "b")

    # Killed after 20: the resumed searcher only has the stored trials.
    history = [Past({"x": x}, value=loss(x)) for x in first]
    resumed = drive(build_searcher(spec, history), 10, "c")
    fresh = drive(build_searcher(make_spec(SPACE, algorithm, seed=1)), 10, "d")

    # It exploits what it knows, as the uninterrupted run did, rather than sampling
    # the whole range again from its random start-up.
    assert spread(resumed) < 0.6 * spread(fresh), (spread(resumed), spread(fresh))
    assert spread(resumed) < 2.0 * spread(later) + 0.05, (spread(resumed), spread(later))


def test_grid_resumes_with_exactly_the_missing_combinations() -> None:
    space = {
        "a": {"type": "categorical", "choices": [1, 2, 3]},
        "b": {"type": "float", "values": [0.1, 0.2, 0.3, 0.4]},
    }
    spec = make_spec(space, "grid")
    points = grid_points(spec)
    done = points[::2]  # every other combination finished before the kill
    searcher = build_searcher(spec, [Past(p) for p in done])
    assert searcher.remaining == len(points) - len(done)
    got = []
    for i in range(len(points)):
        config = searcher.suggest(str(i))
        if config == "FINISHED":
            break
        got.append(config)
    key = lambda p: tuple(sorted(p.items()))  # noqa: E731
    assert sorted(map(key, got)) == sorted(key(p) for p in points if p not in done)


TWO = {
    "x": {"type": "float", "low": -1.0, "high": 1.0},
    "y": {"type": "float", "low": -1.0, "high": 1.0},
}


def run_trials(searcher: Any, n: int, prefix: str) -> list[tuple[float, float]]:
    configs = []
    for i in range(n):
        tid = f"{prefix}{i}"
        config = searcher.suggest(tid)
        value = loss(config["x"]) + config["y"] ** 2
        searcher.on_trial_complete(tid, {"loss": value, "training_iteration": 1})
        configs.append((config["x"], config["y"]))
    return configs


@pytest.mark.parametrize("algorithm", ["tpe", "gp", "random", "qmc", "cmaes"])
def test_a_resumed_searcher_never_replays_the_configs_it_already_ran(algorithm: str) -> None:
    """Killed after 6 trials and resumed twice: no config of the 18 repeats an earlier
    one (a resumed sampler seeded as the first run replayed its first suggestions)."""
    if algorithm == "gp":
        require("torch")  # gp needs it
    for seed in (0, 1, 7):
        spec = make_spec(TWO, algorithm, num_trials=18, seed=seed)
        ran: list[tuple[float, float]] = []
        for run in range(3):  # the first run, then two resumes after a kill
            history = [Past({"x": x, "y": y}, value=loss(x) + y**2) for x, y in ran]
            ran += run_trials(build_searcher(spec, history), 6, f"r{run}-")
        duplicates = len(ran) - len(set(ran))
        assert duplicates == 0, (algorithm, seed, ran)
    # The same history still gives the same suggestions: a resume stays reproducible.
    history = [Past({"x": x, "y": y}, value=loss(x) + y**2) for x, y in ran[:6]]
    again = [run_trials(build_searcher(spec, history), 3, "again") for _ in range(2)]
    assert again[0] == again[1]
