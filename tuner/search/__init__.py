"""Search algorithms as Ray Tune searchers: grid, random, tpe, gp, cmaes, qmc.

The algorithms are listed in :mod:`tuner.search._registry`; this package imports
neither Ray nor Optuna until a searcher is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tuner.search._registry import ALGORITHM_NAMES, ALGORITHMS, Algorithm, check_available

if TYPE_CHECKING:
    from tuner.search._base import TunerSearcher
    from tuner.search._searchers import PastTrial
    from tuner.spec import StudySpec

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_NAMES",
    "Algorithm",
    "build_searcher",
    "check_available",
    "grid_points",
    "grid_size",
]


def build_searcher(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> TunerSearcher:
    """The Ray Tune searcher for a spec's algorithm, primed with earlier trials.

    Args:
        spec: the study spec.
        history: the study's own trials finished before a resume.
        warm: the finished trials of its ``warm_start`` study.

    Raises:
        SpecError: the algorithm needs an optional extra that is not installed.
    """
    check_available(spec.search.algorithm)
    searcher: TunerSearcher = ALGORITHMS[spec.search.algorithm].load()(spec, history, warm)
    return searcher


# The spec imports this package for the algorithm names; tuner.search._space imports
# the spec, so it is imported on first use.
def grid_points(spec: StudySpec) -> list[dict[str, Any]]:
    """Every point of a grid search, in a fixed order (see tuner.search._space)."""
    from tuner.search._space import grid_points as points

    return points(spec)


def grid_size(spec: StudySpec) -> int:
    """Number of grid points."""
    from tuner.search._space import grid_size as size

    return size(spec)
