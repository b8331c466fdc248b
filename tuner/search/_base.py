"""The interface tuner's runner drives a searcher through: Ray Tune's, plus two calls."""

from __future__ import annotations

from ray.tune.search import Searcher

__all__ = ["TunerSearcher"]


class TunerSearcher(Searcher):
    """A Ray Tune :class:`~ray.tune.search.Searcher` that the runner can also tell:

    - :meth:`note_pruned`: the scheduler cut a trial short (Ray does not say so);
    - :attr:`remaining`: how many trials it still has, if it alone decides that.
    """

    def note_pruned(self, trial_id: str) -> None:
        """The scheduler stopped `trial_id` before its budget; called before
        ``on_trial_complete``. The default ignores it."""

    @property
    def remaining(self) -> int | None:
        """Trials still to run, or None when ``search.num_trials`` decides."""
        return None
