"""A spec's search space as Optuna distributions (define-by-run) and as a grid."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tuner.spec import CategoricalParam, FloatParam, IntParam, StudySpec

if TYPE_CHECKING:
    import optuna

Param = FloatParam | IntParam | CategoricalParam


def distribution(p: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution a parameter is sampled from."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(p, CategoricalParam):
        return CategoricalDistribution(p.choices)
    if p.values is not None:  # explicit values: a discrete choice for every algorithm
        return CategoricalDistribution(p.values)
    if isinstance(p, FloatParam):
        assert p.low is not None and p.high is not None  # guaranteed by the spec
        return FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    assert p.low is not None and p.high is not None
    return IntDistribution(p.low, p.high, log=p.log, step=p.step)


def sample(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    """Ask an Optuna trial for the active parameters, in dependency order.

    Inactive conditional parameters are never suggested, so they are absent from the
    result and from Optuna's view of the trial.
    """
    config: dict[str, Any] = {}
    for name, p in spec.ordered_params:
        if p.is_active(config):
            config[name] = _suggest(trial, name, p)
    return config


def _suggest(trial: optuna.Trial, name: str, p: Param) -> Any:
    if isinstance(p, CategoricalParam):
        return trial.suggest_categorical(name, p.choices)
    if p.values is not None:
        return trial.suggest_categorical(name, p.values)
    assert p.low is not None and p.high is not None
    if isinstance(p, FloatParam):
        return trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
    return trial.suggest_int(name, p.low, p.high, log=p.log, step=p.step)


def grid_values(p: Param) -> list[Any]:
    """The values grid search takes for one parameter."""
    if isinstance(p, CategoricalParam):
        return list(p.choices)
    if p.values is not None:
        return list(p.values)
    assert isinstance(p, IntParam) and p.low is not None and p.high is not None
    return list(range(p.low, p.high + 1, p.step))


def grid_points(spec: StudySpec) -> list[dict[str, Any]]:
    """Every combination of values, where each conditional parameter is expanded only
    under the assignments that make it active. Order is deterministic."""
    return list(_expand(spec.ordered_params, {}))


def _expand(params: list[tuple[str, Param]], assigned: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if not params:
        yield dict(assigned)
        return
    (name, p), rest = params[0], params[1:]
    if not p.is_active(assigned):
        yield from _expand(rest, assigned)
        return
    for value in grid_values(p):
        yield from _expand(rest, {**assigned, name: value})


def grid_size(spec: StudySpec) -> int:
    """Number of grid points."""
    params = spec.ordered_params
    if any(p.when for _, p in params):
        return len(grid_points(spec))
    return math.prod(len(grid_values(p)) for _, p in params)
