"""Control of a run: one stop flag, and what raises it.

- :class:`Control` holds the run's one stop flag, and a thread that keeps the study's
  heartbeat and polls for `tuner stop NAME` every :data:`POLL_S` seconds;
- :class:`StopOnRequest` is the Ray Tune stopper that ends the whole run when the flag
  is up or ``limits.study_timeout_s`` has passed, and ends a single trial that sent its
  error (:data:`tuner._report.ERROR_KEY`);
- :class:`SignalStop` turns SIGINT and SIGTERM into a clean stop of the run.

The flag is raised by `tuner stop`, a signal, the study timeout, the recorder giving up
on the storage, and ``limits.max_failed_trials``; each says why (:attr:`Control.reason`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ray import tune

from tuner._report import ERROR_KEY
from tuner.exceptions import StorageError
from tuner.run._callbacks import _DriverOnly
from tuner.storage import Storage

__all__ = ["POLL_S", "Control", "SignalStop", "StopOnRequest"]

log = logging.getLogger(__name__)
POLL_S = 2.0  # how often the heartbeat is written and `tuner stop` is looked for


class Control:
    """The run's stop flag, and the thread that keeps the heartbeat and polls for
    `tuner stop`.

    Args:
        storage: the study's storage (heartbeat, stop requests).
        study_id: the study being run.
        poll_s: how often the thread writes the heartbeat and polls.
    """

    def __init__(self, storage: Storage, study_id: int, poll_s: float = POLL_S) -> None:
        self._storage = storage
        self._study_id = study_id
        self._poll_s = poll_s
        self._flag = threading.Event()
        self._closing = threading.Event()
        self.reason: str | None = None
        self._thread = threading.Thread(target=self._loop, name="tuner-control", daemon=True)
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """Whether the run is being stopped."""
        return self._flag.is_set()

    def request(self, reason: str) -> None:
        """Stop the run; the first reason given is kept."""
        if not self._flag.is_set():
            self.reason = reason
            self._flag.set()

    def close(self) -> None:
        """Stop the thread (the run is over)."""
        self._closing.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._closing.wait(self._poll_s):
            try:
                self._storage.heartbeat(self._study_id)
                if self._storage.is_stop_requested(self._study_id):
                    self.request("tuner stop")
            except StorageError as e:
                # The recorder judges whether the storage is gone; a missed beat is not.
                log.debug("tuner: heartbeat: %s", e)


class StopOnRequest(_DriverOnly, tune.Stopper):
    """Ends the whole run when `control` is stopping or at `deadline`
    (time.monotonic(); limits.study_timeout_s), and a trial whose result carries its
    error (it ended in its own process; stopping it keeps its error result from the
    scheduler and the searcher's results)."""

    def __init__(self, control: Control, deadline: float | None = None) -> None:
        self._control = control
        self._deadline = deadline
        self.timed_out = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        return ERROR_KEY in result

    def stop_all(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.timed_out = True
            self._control.request("limits.study_timeout_s")
        return self._control.stopping


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
