"""Control of a run: what ends it early.

- :class:`StopOnRequest` ends the run when `tuner stop NAME`, a signal, the recorder
  (storage gone) or ``limits.study_timeout_s`` asks for it;
- :class:`SignalStop` turns SIGINT and SIGTERM into a clean stop of the run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from ray import tune

from tuner.run._callbacks import _DriverOnly

if TYPE_CHECKING:
    from tuner.run._recorder import Recorder

__all__ = ["SignalStop", "StopOnRequest"]


class StopOnRequest(_DriverOnly, tune.Stopper):
    """Ends the whole run when `tuner stop NAME` (or the recorder, a signal) asks for
    it, or at `deadline` (time.monotonic(); limits.study_timeout_s)."""

    def __init__(
        self, recorder: Recorder, stopping: threading.Event, deadline: float | None = None
    ) -> None:
        self._recorder = recorder
        self._stopping = stopping
        self._deadline = deadline
        self.timed_out = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        if self._recorder.stop_requested.is_set():
            self._stopping.set()
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.timed_out = True
            self._stopping.set()
        return self._stopping.is_set()


class SignalStop:
    """While active, SIGINT and SIGTERM ask the run to stop instead of killing it.

    The first signal calls `on_signal` (the run stops its trials and records them);
    a second one calls `on_second` (give up waiting). Only the main thread can take
    signals; elsewhere this does nothing.
    """

    def __init__(self, on_signal: Callable[[], None], on_second: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._on_second = on_second
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            self._on_second(signum)
            return
        self.signum = signum
        self._on_signal()
