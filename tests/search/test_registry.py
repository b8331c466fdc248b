"""The search algorithms' registry: names the spec takes, and optional extras."""

from __future__ import annotations

import sys

import pytest

from tuner.exceptions import SpecError
from tuner.search import ALGORITHMS, build_searcher
from tuner.search._base import TunerSearcher
from tuner.spec import SCHEDULERS, SearchSpec, load_spec


def gp_spec():
    return load_spec(
        {
            "name": "g",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "search": {"algorithm": "gp"},
        }
    )


def test_the_spec_takes_exactly_the_registered_names():
    assert SearchSpec.model_fields["algorithm"].annotation.__args__ == tuple(ALGORITHMS)


def test_the_spec_takes_exactly_the_registered_schedulers():
    from tuner.schedulers import SCHEDULERS as REGISTRY
    from tuner.spec import EarlyStoppingSpec

    annotation = EarlyStoppingSpec.model_fields["scheduler"].annotation
    assert annotation.__args__ == tuple(REGISTRY) == SCHEDULERS


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_builds_a_ray_scheduler(name):
    from ray.tune.schedulers import TrialScheduler

    from tuner.schedulers import build_scheduler

    data = gp_spec().to_dict()
    data["early_stopping"] = {"scheduler": name}
    assert isinstance(build_scheduler(load_spec(data)), TrialScheduler)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_builds_a_tuner_searcher(name):
    data = gp_spec().to_dict()
    data["search"]["algorithm"] = name
    data["search_space"] = {"x": {"type": "float", "values": [0.1, 0.5]}}
    if name == "bohb":  # fits at Hyperband's rungs: needs them
        data["early_stopping"] = {"scheduler": "hyperband", "grace_period": 2}
    assert isinstance(build_searcher(load_spec(data)), TunerSearcher)


def test_gp_without_torch_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(SpecError) as info:
        build_searcher(gp_spec())
    message = str(info.value)
    assert message.startswith("search.algorithm: gp needs torch")
    assert "pip install 'tuner[gp]'" in message and "\n" not in message


def test_a_gp_study_without_torch_fails_before_any_trial(monkeypatch, sqlite_url):
    import tuner
    from tuner.run import _driver as runner

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(runner._ray, "ensure_ray", lambda *a, **k: pytest.fail("Ray started"))
    study = tuner.create_study(gp_spec().to_dict(), storage=sqlite_url)
    with pytest.raises(SpecError, match=r"pip install 'tuner\[gp\]'"):
        study.run(progress=False)
    # Nothing ran, so the study made for this run is gone (as for any spec mistake).
    with pytest.raises(tuner.StudyNotFoundError):
        tuner.load_study("g", storage=sqlite_url)
