"""Search algorithms as Ray Tune searchers: grid, random, tpe, gp, cmaes, qmc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuner.search._space import grid_points, grid_size
from tuner.spec import StudySpec

if TYPE_CHECKING:
    from tuner.search._searchers import GridSearcher, OptunaSearcher, PastTrial

__all__ = ["build_searcher", "grid_points", "grid_size"]


def build_searcher(
    spec: StudySpec, history: Sequence[PastTrial] = ()
) -> GridSearcher | OptunaSearcher:
    """The Ray Tune searcher for a spec's algorithm, primed with earlier trials."""
    from tuner.search._searchers import GridSearcher, OptunaSearcher

    if spec.search.algorithm == "grid":
        return GridSearcher(spec, history)
    return OptunaSearcher(spec, history)
