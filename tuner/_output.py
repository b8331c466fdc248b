"""A trial's own output, and what a trial knows of itself.

Output: while a trial's function runs, :func:`capture` copies what it writes to
``sys.stdout`` and ``sys.stderr`` into a bounded buffer (everything still goes on to
Ray's worker logs, so ``--verbose`` shows it as before). Each ``tuner.report`` takes
what is new since the last one and sends it with the result under :data:`OUTPUT_KEY`;
what the function writes after its last report (a final summary, the lines before an
exception) is left in Ray's key-value store when the function ends, where the study's
driver picks it up as the trial ends. The driver stores the last :data:`OUTPUT_LIMIT`
bytes of each attempt of each trial (``tuner logs NAME --trial N``, the dashboard).

Output written at the file-descriptor level by C code that bypasses Python's
``sys.stdout`` is not captured: redirecting fd 1 and 2 would also swallow what Ray's
own threads in the reused actor process write. XGBoost's messages and evaluation log go
through Python and are captured.

Identity: the driver numbers a trial when Ray starts it, after the trial's process got
its config; it publishes the number, the study's name and the attempt in Ray's
key-value store under the Ray trial id before the trial's function is called (and the
new attempt before a retry runs), and :func:`current_trial` reads it there.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = [
    "OUTPUT_KEY",
    "OUTPUT_LIMIT",
    "OutputTail",
    "TrialInfo",
    "capture",
    "clear_trial_info",
    "current_trial",
    "pending_output",
    "publish_trial_info",
    "tail_bytes",
    "take_final_output",
]

OUTPUT_KEY = "_tuner_output"
OUTPUT_LIMIT = 64 * 1024
"""Bytes of output kept per attempt of a trial (UTF-8): the last 64 KiB."""

_KV_NAMESPACE = "tuner"


@dataclass(frozen=True)
class TrialInfo:
    """What a running trial knows of itself (:func:`tuner.current_trial`).

    Attributes:
        number: the trial's number in its study (0, 1, 2, ...), as stored and shown.
        study: the study's name.
        attempt: 1, plus one for each time the trial was run again after its worker
            died (``limits.max_retries``).
    """

    number: int
    study: str
    attempt: int


def tail_bytes(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The end of `text` that fits in `limit` UTF-8 bytes (whole characters only)."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", errors="ignore")


class OutputTail:
    """What a trial wrote and has not yet sent: at most `limit` bytes, the newest.

    Thread-safe: the trial's function may print from several threads.
    """

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._size = 0  # characters held; trimmed to `limit` bytes when it grows past

    def write(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self._limit:  # characters >= bytes / 4: trim now and then
                kept = tail_bytes("".join(self._parts), self._limit)
                self._parts, self._size = [kept], len(kept)

    @property
    def empty(self) -> bool:
        """Whether nothing was written since the last take (a racy peek: a write that
        races with it is taken next time)."""
        return self._size == 0

    def take(self) -> str:
        """What was written since the last take (its last `limit` bytes)."""
        with self._lock:
            text = "".join(self._parts)
            self._parts, self._size = [], 0
        return tail_bytes(text, self._limit)


class _Tee(io.TextIOBase):
    """A text stream that writes to `stream` and to `tail`."""

    def __init__(self, stream: TextIO, tail: OutputTail) -> None:
        self._stream = stream
        self._tail = tail

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if isinstance(text, str):
            self._tail.write(text)
        return written

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_tail: OutputTail | None = None


@contextlib.contextmanager
def capture(limit: int = OUTPUT_LIMIT) -> Iterator[OutputTail]:
    """Copy what this process writes to ``sys.stdout``/``sys.stderr`` into a bounded
    buffer for the `with` block (a trial's function); on exit, what was not sent with
    a report is left for the driver (:func:`take_final_output`)."""
    global _tail
    tail = OutputTail(limit)
    previous = _tail
    out, err = sys.stdout, sys.stderr
    tee_out = _Tee(out, tail) if out is not None else None  # None: no console (pythonw)
    tee_err = _Tee(err, tail) if err is not None else None
    if tee_out is not None:
        sys.stdout = tee_out
    if tee_err is not None:
        sys.stderr = tee_err
    _tail = tail
    try:
        yield tail
    finally:
        # Only undo what is still ours: the objective may have replaced them itself.
        if tee_out is not None and sys.stdout is tee_out:
            sys.stdout = out
        if tee_err is not None and sys.stderr is tee_err:
            sys.stderr = err
        _tail = previous
        _cached.clear()
        rest = tail.take()
        if rest:
            _put_final_output(rest)


def pending_output() -> dict[str, str]:
    """``{OUTPUT_KEY: text}`` with what the trial wrote since its last report, for the
    next result; empty when it wrote nothing (or runs outside :func:`capture`)."""
    tail = _tail
    if tail is None or tail.empty:  # the common case, without taking the lock
        return {}
    text = tail.take()
    return {OUTPUT_KEY: text} if text else {}


# -- identity and the final output: Ray's key-value store (through tuner._compat.ray;
# every use guarded: neither may ever fail a trial or the study) -----------------------

_cached: dict[str, TrialInfo] = {}


def _ray_trial_id() -> str | None:
    try:
        import warnings

        from ray import tune

        with warnings.catch_warnings():  # outside Ray Tune it warns, and gives None
            warnings.simplefilter("ignore")
            return tune.get_context().get_trial_id()
    except Exception:
        return None


def _key(kind: str, trial_id: str) -> bytes:
    return f"{kind}:{trial_id}".encode()


def publish_trial_info(trial_id: str, info: TrialInfo) -> None:
    """In the driver: tell Ray trial `trial_id` who it is (before its function runs)."""
    from tuner._compat.ray import kv_put

    value = json.dumps({"number": info.number, "study": info.study, "attempt": info.attempt})
    with contextlib.suppress(Exception):  # a trial's identity must never stop the study
        kv_put(_key("trial", trial_id), value.encode(), _KV_NAMESPACE)


def clear_trial_info(trial_id: str) -> None:
    """In the driver: forget what was published for a trial that ended."""
    from tuner._compat.ray import kv_del

    with contextlib.suppress(Exception):
        kv_del(_key("trial", trial_id), _KV_NAMESPACE)


def current_trial() -> TrialInfo | None:
    """The trial this code runs in: its number, its study's name and its attempt.

    Call it from the function a ``kind: python`` trainer names (or code it calls, in
    the trial's process). The number is the one ``tuner show``, ``tuner export`` and the
    dashboard show; the attempt is 1, or 2 for the first retry after a worker died.

    Returns:
        A :class:`TrialInfo`, or None outside a trial that tuner runs.
    """
    if _tail is None:  # no trial's function runs in this process
        return None
    trial_id = _ray_trial_id()
    if trial_id is None:
        return None
    if trial_id in _cached:
        return _cached[trial_id]
    from tuner._compat.ray import kv_get

    try:
        raw = kv_get(_key("trial", trial_id), _KV_NAMESPACE)
    except Exception:
        return None
    if not raw:
        return None
    data = json.loads(raw)
    info = TrialInfo(int(data["number"]), str(data["study"]), int(data["attempt"]))
    _cached[trial_id] = info  # while the trial's function runs; a retry is a new run
    return info


def _put_final_output(text: str) -> None:
    from tuner._compat.ray import kv_put

    trial_id = _ray_trial_id()
    if trial_id is None:
        return
    with contextlib.suppress(Exception):  # lost output must never fail the trial
        kv_put(_key("output", trial_id), text.encode(), _KV_NAMESPACE)


def take_final_output(trial_id: str) -> str:
    """In the driver: what trial `trial_id` wrote after its last report (and forget it);
    empty if nothing or outside Ray."""
    from tuner._compat.ray import kv_del, kv_get

    try:
        key = _key("output", trial_id)
        raw = kv_get(key, _KV_NAMESPACE)
        if raw:
            kv_del(key, _KV_NAMESPACE)
        return raw.decode("utf-8", errors="replace") if raw else ""
    except Exception:
        return ""
