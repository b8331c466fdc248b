"""Checkpoints and models in the study's driver: their rows, ``artifacts.keep``, and
where each trial starts from.

:class:`Checkpoints` is told by the :class:`~tuner.run._callbacks.RecordingCallback` of
each checkpoint or model a trial stored (the trial's process copied the files into the
artifacts store, :mod:`tuner._checkpoint`) and of how each trial ended. It

- records a row for each (``ArtifactSaved``) and drops rows with their files
  (``ArtifactDeleted``);
- keeps a running trial's latest checkpoint only, and publishes it for the trial's id,
  so that an attempt Ray runs again after its worker died starts from it;
- keeps the models of the best ``artifacts.keep`` finished trials: a completed trial's
  model is the model its trainer saved, or else its last checkpoint; every other file
  of a finished trial goes as it ends, and a model goes when it falls out of the best;
- never deletes a checkpoint that a trial may still start from (:meth:`pin`: a
  Population Based Training donor's, until its child has its own).

Deleting is best effort: a row goes first, its files once that is written; a file
that cannot be deleted is logged and left for ``tuner delete``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner._checkpoint import Restore, clear_restore, publish_restore
from tuner.run._recorder import AfterWrite
from tuner.storage import ArtifactDeleted, ArtifactRecord, ArtifactSaved, TrialRecord, TrialState

__all__ = ["Checkpoints", "Ranking"]

log = logging.getLogger(__name__)

# A finished trial's rank key for artifacts.keep (smaller is better), or None where it
# cannot be among the best (not completed, infeasible, no value).
Ranking = Callable[[TrialState | str, Mapping[str, float]], tuple[float, ...] | None]


@dataclass
class _Trial:
    number: int
    latest: Restore | None = None  # its latest checkpoint
    model: tuple[int, str] | None = None  # (step, uri): a model its trainer saved
    started_from: str | None = None  # the checkpoint it started from (pinned)
    files: dict[str, int] = field(default_factory=dict)  # uri -> bytes, stored this run


class Checkpoints:
    """See the module.

    Args:
        put: where storage events go (the recorder's ``put``).
        study_id: the study being run.
        store: the study's artifacts store (``tuner.artifacts.ArtifactStore``).
        keep: ``artifacts.keep``.
        ranking: a finished trial's rank key (smaller is better; None: not a candidate).
    """

    def __init__(
        self,
        put: Callable[[Any], None],
        study_id: int,
        store: Any,
        keep: int,
        ranking: Ranking,
    ) -> None:
        self._put = put
        self._study_id = study_id
        self._store = store
        self._keep = keep
        self._ranking = ranking
        self._open: dict[str, _Trial] = {}  # Ray trial id -> its checkpoints
        self._kept: dict[int, tuple[tuple[float, ...], str]] = {}  # number -> (rank, model)
        self._pins: Counter[str] = Counter()
        self._doomed: dict[str, int] = {}  # pinned uri -> its trial's number, to delete

    # -- the study's earlier runs -------------------------------------------------------

    def load(self, history: Sequence[TrialRecord], stored: Sequence[ArtifactRecord]) -> None:
        """Take in the models that earlier runs kept (``tuner resume``)."""
        by_number = {t.number: t for t in history}
        for a in stored:
            trial = by_number.get(a.number)
            if a.kind != "model" or trial is None:
                continue
            rank = self._ranking(trial.state, trial.metrics)
            if rank is not None:
                self._kept[a.number] = (rank, a.uri)

    # -- a trial's life -----------------------------------------------------------------

    def started(
        self,
        trial_id: str,
        number: int,
        restore: Restore | None = None,
        *,
        own: bool = False,
        size: int = 0,
        older: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Ray starts trial `trial_id` (`number`), from `restore` where it has one: its
        `own` checkpoint (``tuner resume`` continues it), or a donor's (Population Based
        Training; pinned until the trial stores one of its own)."""
        trial = self._open.setdefault(trial_id, _Trial(number))
        if restore is None:
            return
        trial.latest = restore
        publish_restore(trial_id, restore)
        if own:  # its own: it goes as the trial's files go, with any older ones left
            trial.files[restore.uri] = size
            trial.files.update(dict(older))
        else:
            trial.started_from = restore.uri
            self.pin(restore.uri)

    def saved(self, trial_id: str, info: Mapping[str, Any], kind: str = "checkpoint") -> None:
        """The trial stored a checkpoint (or its model): `info` is what its report
        carried (``uri``, ``bytes``, ``step``, ``reports``)."""
        trial = self._open.get(trial_id)
        if trial is None:
            return
        uri, step = str(info["uri"]), int(info["step"])
        trial.files[uri] = int(info["bytes"])
        self._put(ArtifactSaved(self._study_id, trial.number, step, kind, uri, trial.files[uri]))
        if kind == "model":
            trial.model = (step, uri)
            return
        previous = trial.latest
        trial.latest = Restore(uri, step, int(info.get("reports", 0)))
        publish_restore(trial_id, trial.latest)  # before the old one goes
        if trial.started_from is not None:  # it has its own now: the donor's may go
            self.unpin(trial.started_from)
            trial.started_from = None
        if previous is not None and previous.uri != uri and previous.uri in trial.files:
            self._delete(trial.number, previous.uri)

    def retry_point(self, trial_id: str) -> int | None:
        """The step of the checkpoint that the trial's next attempt starts from (None:
        from scratch)."""
        trial = self._open.get(trial_id)
        return None if trial is None or trial.latest is None else trial.latest.step

    def ended(self, trial_id: str, state: TrialState | str, metrics: Mapping[str, float]) -> None:
        """The trial ended: its model is kept if it is among the best, and every other
        file it stored goes."""
        trial = self._open.pop(trial_id, None)
        clear_restore(trial_id)
        if trial is None:
            return
        if trial.started_from is not None:
            self.unpin(trial.started_from)
        model = trial.model or (
            None
            if trial.latest is None or trial.latest.uri not in trial.files
            else (trial.latest.step, trial.latest.uri)
        )
        rank = self._ranking(state, metrics) if model is not None else None
        keep: str | None = None
        if model is not None and rank is not None:
            self._kept[trial.number] = (rank, model[1])
            if trial.model is None:  # its last checkpoint becomes its model
                self._put(
                    ArtifactSaved(
                        self._study_id,
                        trial.number,
                        model[0],
                        "model",
                        model[1],
                        trial.files[model[1]],
                    )
                )
            keep = model[1]
            for number, uri in self._fallen_out():
                self._delete(number, uri)
                if number == trial.number:
                    keep = None
        for uri in sorted(set(trial.files) - {keep}):
            self._delete(trial.number, uri)

    # -- pins (Population Based Training's donors) --------------------------------------

    def pin(self, uri: str) -> None:
        """Keep `uri` until as many :meth:`unpin` calls (a trial may start from it)."""
        self._pins[uri] += 1

    def unpin(self, uri: str) -> None:
        self._pins[uri] -= 1
        if self._pins[uri] <= 0:
            del self._pins[uri]
            number = self._doomed.pop(uri, None)
            if number is not None:
                self._delete(number, uri)

    def latest(self, trial_id: str) -> Restore | None:
        """The trial's latest checkpoint (a Population Based Training donor's)."""
        trial = self._open.get(trial_id)
        return None if trial is None else trial.latest

    def model_of(self, number: int) -> str | None:
        """Where finished trial `number`'s kept model lies (None: none kept)."""
        kept = self._kept.get(number)
        return None if kept is None else kept[1]

    # -- files --------------------------------------------------------------------------

    def _fallen_out(self) -> list[tuple[int, str]]:
        if len(self._kept) <= self._keep:
            return []
        ranked = sorted(self._kept.items(), key=lambda item: (item[1][0], item[0]))
        out = [(number, uri) for number, (_, uri) in ranked[self._keep :]]
        for number, _ in out:
            del self._kept[number]
        return out

    def _delete(self, number: int, uri: str) -> None:
        """Drop `uri`'s row, then (once that is written) its files: a driver killed in
        between leaves files without a row (``tuner delete`` takes them), never a row
        without its files."""
        if self._pins.get(uri):
            self._doomed[uri] = number
            return
        self._put(ArtifactDeleted(self._study_id, number, uri))
        store = self._store

        def delete() -> None:
            try:
                store.delete(uri)
            except Exception as e:  # a file left behind must not stop the study
                log.warning("could not delete %s from the artifacts store: %s", uri, e)

        self._put(AfterWrite(delete))
