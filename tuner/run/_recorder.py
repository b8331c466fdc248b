"""The recorder: writes a run's storage events from a background thread, in batches.

When the database goes away, it keeps the events and writes them when it returns
(within :data:`STORAGE_GRACE_S`); past that, it gives up and stops the study.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from tuner.exceptions import StorageError
from tuner.storage import (
    Storage,
    TrialFinished,
    TrialOutput,
    TrialResult,
    TrialRetried,
    TrialStarted,
)

__all__ = ["STORAGE_GRACE_S", "Event", "Recorder"]

log = logging.getLogger(__name__)
Event = TrialStarted | TrialResult | TrialRetried | TrialFinished | TrialOutput
# How long the recorder keeps events while the database is unreachable (a restarted
# PostgreSQL) before it gives up and stops the study.
STORAGE_GRACE_S = 60.0


class Recorder:
    """Writes storage events from a background thread, in batches.

    A batch the database refuses for a lost connection is kept and written again, in
    order, until it succeeds or `grace_s` has passed since the first failure; only
    then is :attr:`error` set and the study stopped.

    Args:
        storage: where to write.
        study_id: the study being run.
        interval_s: how often queued events are written (and the stop flag polled).
        grace_s: how long the database may be unreachable.
    """

    def __init__(
        self,
        storage: Storage,
        study_id: int,
        interval_s: float = 0.25,
        grace_s: float = STORAGE_GRACE_S,
    ) -> None:
        self._storage = storage
        self._study_id = study_id
        self._interval = interval_s
        self._grace = grace_s
        self._held: list[Event] = []  # a batch not yet written (the database was away)
        self._failing_since: float | None = None
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.stop_requested = threading.Event()
        self.error: StorageError | None = None
        self._thread = threading.Thread(target=self._loop, name="tuner-recorder", daemon=True)
        self._thread.start()

    def put(self, event: Event) -> None:
        self._queue.put(event)

    def close(self) -> None:
        """Write everything still queued, then stop the thread."""
        self._closing.set()
        self._thread.join()

    def _drain(self) -> list[Event]:
        batch: list[Event] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _loop(self) -> None:
        last_poll = 0.0
        while True:
            closing = self._closing.wait(self._interval)
            if self.error is not None:
                self._drain()  # given up: nothing more can be written
                if closing:
                    return
                continue
            self._held.extend(self._drain())
            try:
                if self._held:
                    self._storage.write(self._held)
                    self._held = []
                if time.monotonic() - last_poll > 2.0:
                    last_poll = time.monotonic()
                    self._storage.heartbeat(self._study_id)
                    if self._storage.is_stop_requested(self._study_id):
                        self.stop_requested.set()
                self._failing_since = None
            except StorageError as e:
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                    log.warning("tuner: %s; retrying for up to %g s", e, self._grace)
                if not _transient(e) or now - self._failing_since > self._grace:
                    # Storage gone: stop the study rather than run trials nobody records.
                    log.error("tuner: %s; stopping the study", e)
                    self.error = e
                    self.stop_requested.set()
                elif closing:
                    time.sleep(min(1.0, self._interval * 4))
                    continue  # the run is over, but what is held must still be written
            if closing and self._queue.empty() and (not self._held or self.error):
                return


def _transient(error: StorageError) -> bool:
    """Whether a storage error may pass when the database comes back (a lost or
    refused connection, a lock), rather than an error in the events themselves."""
    text = str(error).lower()
    return not text.startswith("cannot write trial events:") or any(
        hint in text for hint in ("connection", "server", "terminat", "locked", "timeout", "closed")
    )
