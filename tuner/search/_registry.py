"""The search algorithms a spec can name, one line each.

Adding an algorithm: write its module (a function ``(spec, history, warm) -> TunerSearcher``)
and add one :class:`Algorithm` line below; the spec's ``search.algorithm`` takes its
names from here. This module imports nothing heavy: the spec reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["ALGORITHMS", "ALGORITHM_NAMES", "Algorithm", "check_available"]


@dataclass(frozen=True)
class Algorithm:
    """One search algorithm.

    Attributes:
        name: what a spec writes in ``search.algorithm``.
        factory: ``"module:function"``, a function ``(spec, history, warm) -> TunerSearcher``:
            the study's own earlier trials (resume), then a warm start's.
        requires: modules it imports that are not installed with tuner itself.
        extra: the ``pip install 'tuner[extra]'`` that brings them.
        multi_objective: whether it takes a spec with several ``objectives``.
        needs_rungs: whether it fits its model at Hyperband's rungs, so that the spec's
            scheduler must have them (``tuner.schedulers``' registry says which do).
    """

    name: str
    factory: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    multi_objective: bool = True
    needs_rungs: bool = False

    def load(self) -> Any:
        """The factory function (imports its module)."""
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("grid", "tuner.search._searchers:GridSearcher"),
        Algorithm("random", "tuner.search._samplers:random"),
        Algorithm("tpe", "tuner.search._samplers:tpe"),
        Algorithm("gp", "tuner.search._samplers:gp", requires=("torch",), extra="gp"),
        Algorithm("cmaes", "tuner.search._samplers:cmaes", multi_objective=False),
        Algorithm("qmc", "tuner.search._samplers:qmc"),
        Algorithm("nsga2", "tuner.search._samplers:nsga2"),
        Algorithm("nsga3", "tuner.search._samplers:nsga3"),
        # bohb ranks by one value at a rung; auto picks among tpe, gp and qmc, which all
        # take several objectives.
        Algorithm("bohb", "tuner.search._bohb:bohb", multi_objective=False, needs_rungs=True),
        Algorithm("auto", "tuner.search._auto:auto"),
        # Population Based Training as lineage: cut trials' places go to new trials
        # that start from a top trial's checkpoint (tuner.search._pbt, tuner.run._pbt).
        Algorithm("pbt", "tuner.search._pbt:pbt", multi_objective=False),
        Algorithm("pb2", "tuner.search._pbt:pb2", multi_objective=False),
    )
}
ALGORITHM_NAMES: tuple[str, ...] = tuple(ALGORITHMS)


def check_available(name: str) -> None:
    """Raise SpecError (one line, naming the fix) if an algorithm's extra is missing.

    Raises:
        SpecError: a module the algorithm needs cannot be imported.
    """
    from tuner.exceptions import SpecError

    algorithm = ALGORITHMS[name]
    for module in algorithm.requires:
        try:
            importlib.import_module(module)
        except ImportError:
            fix = f"pip install 'tuner[{algorithm.extra}]'" if algorithm.extra else "install it"
            raise SpecError(
                f"{name} needs {module}, which is not installed; {fix}, or use another algorithm",
                ["search", "algorithm"],
            ) from None
