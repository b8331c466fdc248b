"""The recorder: writes a run's storage events from a background thread, in batches.

When the database goes away, it keeps the events and writes them when it returns
(within :data:`STORAGE_GRACE_S`); past that, it gives up and stops the study.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tuner.exceptions import StorageError, StorageUnavailable
from tuner.storage import Storage, TrialEvent

__all__ = ["STORAGE_GRACE_S", "AfterWrite", "Event", "Recorder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AfterWrite:
    """Not an event: `action` runs in the recorder's thread once every event put
    before it is in the database (deleting a file only after its row is gone)."""

    action: Callable[[], None]


Event = TrialEvent | AfterWrite  # what the storage takes, and actions after it
# How long the recorder keeps events while the database is unreachable (a restarted
# PostgreSQL) before it gives up and stops the study.
STORAGE_GRACE_S = 60.0


class Recorder:
    """Writes storage events from a background thread, in batches; it only writes.

    A batch the database cannot take now (:class:`~tuner.exceptions.StorageUnavailable`:
    a lost connection, a lock) is kept and written again, in order, until it succeeds or
    `grace_s` has passed since the first failure. A batch it refuses
    (:class:`~tuner.exceptions.StorageRefused`), or one still unwritten after `grace_s`,
    ends the recording: :attr:`error` is set and `on_give_up` is called (the run stops
    rather than run trials nobody records).

    Args:
        storage: where to write.
        interval_s: how often queued events are written.
        grace_s: how long the database may be unreachable.
        on_give_up: called once, from the recorder's thread, when it gives up.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        interval_s: float = 0.25,
        grace_s: float = STORAGE_GRACE_S,
        on_give_up: Callable[[StorageError], None] | None = None,
    ) -> None:
        self._storage = storage
        self._interval = interval_s
        self._grace = grace_s
        self._on_give_up = on_give_up
        self._held: list[Event] = []  # a batch not yet written (the database was away)
        self._failing_since: float | None = None
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._closing = threading.Event()
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
                    events = [e for e in self._held if not isinstance(e, AfterWrite)]
                    if events:
                        self._storage.write(events)
                    actions = [e.action for e in self._held if isinstance(e, AfterWrite)]
                    self._held = []
                    for action in actions:
                        try:
                            action()
                        except Exception as e:  # an action must not stop the recording
                            log.warning("tuner: %s", e)
                self._failing_since = None
            except StorageError as e:
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                    log.warning("tuner: %s; retrying for up to %g s", e, self._grace)
                if not isinstance(e, StorageUnavailable) or now - self._failing_since > self._grace:
                    self._give_up(e)
                elif closing:
                    time.sleep(min(1.0, self._interval * 4))
                    continue  # the run is over, but what is held must still be written
            if closing and self._queue.empty() and (not self._held or self.error):
                return

    def _give_up(self, error: StorageError) -> None:
        log.error("tuner: %s; stopping the study", error)
        self.error = error
        if self._on_give_up is not None:
            self._on_give_up(error)
