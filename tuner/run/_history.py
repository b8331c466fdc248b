"""Warm-start history: the finished trials of an earlier study that inform the searcher."""

from __future__ import annotations

import logging
from dataclasses import replace

from tuner.spec import StudySpec
from tuner.storage import Storage, TrialRecord, TrialState

__all__ = ["COUNTED", "warm_start_history"]

log = logging.getLogger(__name__)


def warm_start_history(spec: StudySpec, storage: Storage) -> list[TrialRecord]:
    """The finished trials of the spec's warm-start study (none without one).

    Parameters that this search space does not have are dropped (logged once).

    Raises:
        SpecError: the study does not exist, or shares no parameter with the space.
    """
    from tuner.exceptions import SpecError, StudyNotFoundError

    ws = spec.warm_start
    if ws is None:
        return []
    if ws.study == spec.name and ws.storage is None:
        raise SpecError(
            "names this study itself; its own trials already inform a resume: name an "
            "earlier study",
            ["warm_start", "study"],
        )
    other = storage if ws.storage is None else Storage(ws.storage, read_only=True)
    try:
        record = other.get_study(ws.study)
        trials = other.get_trials(record.id, list(COUNTED))
    except StudyNotFoundError:
        raise SpecError(
            f"there is no study {ws.study!r} in {other.url}; name a study that `tuner list` "
            "shows there, or set warm_start.storage to its database",
            ["warm_start", "study"],
        ) from None
    finally:
        if other is not storage:
            other.close()
    names = {name for t in trials for name in t.params}
    shared = names & set(spec.search_space)
    if trials and not shared:
        raise SpecError(
            f"study {ws.study!r} shares no parameter with this search space (its parameters: "
            f"{', '.join(sorted(names))}); warm-start from a study over the same parameters",
            ["warm_start", "study"],
        )
    if ws.fixed:  # the values the earlier study ran with, for parameters it did not search
        trials = [
            replace(t, params={**ws.fixed, **t.params}) if set(ws.fixed) - set(t.params) else t
            for t in trials
        ]
    from tuner.search._auto import resolved

    unsearched = sorted(set(spec.search_space) - names - set(ws.fixed))
    algorithm = resolved(spec)
    if trials and unsearched and algorithm in ("gp", "cmaes"):
        log.warning(
            "tuner: warm_start: study %r did not search %s; %s leaves its trials out unless "
            "warm_start.fixed gives the values they ran with",
            ws.study,
            ", ".join(unsearched),
            algorithm,
        )
    dropped = sorted(names - shared)
    if dropped:
        log.warning(
            "tuner: warm_start: parameters %s of study %r are not in this search space; dropped",
            ", ".join(dropped),
            ws.study,
        )
    log.info(
        "tuner: warm_start: %d finished trials of %r inform the searcher", len(trials), ws.study
    )
    return trials


# Trials of earlier runs that count towards num_trials (a stopped one runs again).
COUNTED = (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED)
