"""The driver's side of trial output and identity (see :mod:`tuner._output`).

:class:`TrialOutputs` is held by the :class:`~tuner.run._callbacks.RecordingCallback`:
it tells each trial its number, study and attempt when Ray starts or retries it, and
turns the output a trial sends with its results, and what it left when it ended, into
:class:`~tuner.storage.TrialOutput` events for the recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuner._output import (
    OUTPUT_KEY,
    TrialInfo,
    clear_trial_info,
    publish_trial_info,
    tail_bytes,
    take_final_output,
)
from tuner.storage import TrialOutput

__all__ = ["TrialOutputs"]


class TrialOutputs:
    """Trial identity out, trial output in, for one run of a study.

    Args:
        put: where storage events go (the recorder's ``put``).
        study_id: the study being run.
        study_name: its name, as a trial reads it from :func:`tuner.current_trial`.
    """

    def __init__(self, put: Callable[[Any], None], study_id: int, study_name: str) -> None:
        self._put = put
        self._study_id = study_id
        self._study_name = study_name
        self._open: dict[str, tuple[int, int]] = {}  # Ray trial id -> (number, attempt)

    def started(self, trial_id: str, number: int) -> None:
        """Ray starts trial `trial_id`, numbered `number`: its first attempt."""
        self._open[trial_id] = (number, 1)
        publish_trial_info(trial_id, TrialInfo(number, self._study_name, 1))

    def retried(self, trial_id: str, number: int, attempt: int) -> None:
        """Ray runs the trial again (its worker died): attempt `attempt` begins."""
        self._open[trial_id] = (number, attempt)
        publish_trial_info(trial_id, TrialInfo(number, self._study_name, attempt))

    def result(self, trial_id: str, result: dict[str, Any]) -> None:
        """A result arrived; what the trial wrote since its last one is recorded."""
        text = result.get(OUTPUT_KEY)
        if text and isinstance(text, str):
            self._record(trial_id, text)

    def ended(self, trial_id: str) -> None:
        """The trial ended (call it before the ledger closes it): what it wrote after
        its last result is recorded, and its published identity removed."""
        text = take_final_output(trial_id)
        if text:
            self._record(trial_id, text)
        clear_trial_info(trial_id)
        self._open.pop(trial_id, None)

    def close(self) -> None:
        """The run is over (stopped, interrupted): forget the trials still open. No
        call goes to Ray here, whose cluster may be gone by now; what those trials
        sent with their results is stored already."""
        self._open.clear()

    def _record(self, trial_id: str, text: str) -> None:
        opened = self._open.get(trial_id)
        if opened is None:
            return
        number, attempt = opened
        self._put(TrialOutput(self._study_id, number, attempt, tail_bytes(text)))
