"""Checkpoints, in the trial's process: ``tuner.report(checkpoint=DIR)`` and
``tuner.get_checkpoint()``.

Saving: :func:`save` copies the folder a trial wrote into the study's artifacts store
(``artifacts.store``), under ``{study}/trial-NNNNN/checkpoint-SSSSSSSS``, from the trial's
own process (so a checkpoint crosses the network once, at the store's bandwidth), and
the report that carries it names the copy under :data:`CHECKPOINT_KEY`. The study's
driver records it (a row in ``artifacts``) and keeps the best trials' models
(``artifacts.keep``).

Starting from one: the driver publishes, under the Ray trial id in Ray's key-value
store, the checkpoint a trial starts from: its own latest, when its worker died and
Ray runs it again (``limits.max_retries``); the one it was running from, when
``tuner resume`` continues it after its driver was killed; a donor's, under Population
Based Training. :func:`get_checkpoint` copies it to a local folder once per attempt.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.exceptions import ReportError

__all__ = [
    "CHECKPOINT_KEY",
    "MODEL_KEY",
    "Restore",
    "clear_restore",
    "fetch",
    "publish_restore",
    "read_restore",
    "save",
]

# A report's checkpoint, as stored: {"uri", "bytes", "step"}.
CHECKPOINT_KEY = "_tuner_checkpoint"
# A trial's model, saved by a built-in trainer as it ends: {"uri", "bytes", "step"}.
MODEL_KEY = "_tuner_model"

_KV_NAMESPACE = "tuner"


@dataclass(frozen=True)
class Restore:
    """The checkpoint a trial starts from: where it lies, the step it was saved at,
    and how many reports the trial had made by then (the trial goes on counting)."""

    uri: str
    step: int
    reports: int = 0

    def to_json(self) -> str:
        return json.dumps({"uri": self.uri, "step": self.step, "reports": self.reports})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Restore:
        data = json.loads(raw)
        return cls(str(data["uri"]), int(data["step"]), int(data.get("reports", 0)))


def _key(trial_id: str) -> bytes:
    return f"restore:{trial_id}".encode()


def publish_restore(trial_id: str, restore: Restore) -> None:
    """In the driver: Ray trial `trial_id` starts (or starts again) from `restore`."""
    from tuner._compat.ray import kv_put

    with contextlib.suppress(Exception):  # outside Ray: nothing to publish
        kv_put(_key(trial_id), restore.to_json().encode(), _KV_NAMESPACE)


def clear_restore(trial_id: str) -> None:
    """In the driver: the trial ended; forget where it would start from."""
    from tuner._compat.ray import kv_del

    with contextlib.suppress(Exception):
        kv_del(_key(trial_id), _KV_NAMESPACE)


def read_restore() -> Restore | None:
    """In a trial: the checkpoint this attempt starts from (None: from scratch)."""
    from tuner._compat.ray import kv_get
    from tuner._output import _ray_trial_id

    trial_id = _ray_trial_id()
    if trial_id is None:
        return None
    try:
        raw = kv_get(_key(trial_id), _KV_NAMESPACE)
    except Exception:
        return None
    return Restore.from_json(raw) if raw else None


def fetch(store: Any, restore: Restore) -> Path:
    """Copy the checkpoint `restore` names to a new local folder; returns the folder."""
    local = Path(tempfile.mkdtemp(prefix="tuner-checkpoint-"))
    path: Path = store.get_dir(restore.uri, local / "checkpoint")
    return path


def save(store: Any, folder: Any, step: int, kind: str = "checkpoint") -> dict[str, Any]:
    """Copy `folder` into the study's artifacts store as trial's `kind` of `step`;
    what the report carries under :data:`CHECKPOINT_KEY` (or :data:`MODEL_KEY`).

    Raises:
        ReportError: `folder` is not a folder, or the trial has no artifacts store.
    """
    from tuner._output import current_trial

    try:
        path = Path(os.fspath(folder))
    except TypeError:
        raise ReportError(
            f"tuner.report(checkpoint=...) must be a folder (a str or a Path; got "
            f"{type(folder).__name__})"
        ) from None
    if not path.is_dir():
        raise ReportError(
            f"tuner.report(checkpoint={str(path)!r}): no such folder; write the checkpoint's "
            "files into a folder, then report the folder"
        )
    if store is None:
        raise ReportError(
            "tuner.report(checkpoint=...): this study has no artifacts store to keep it "
            "in; set artifacts.store in the spec (a folder every node sees, or a URL such "
            "as s3://bucket/prefix)"
        )
    info = current_trial()
    if info is None:
        raise ReportError("tuner.report(checkpoint=...) was called outside a trial tuner runs")
    uri = store.trial_key(info.study, info.number, kind, step)
    size = store.put_dir(path, uri)  # replaces the step saved by a dead attempt
    return {"uri": uri, "bytes": int(size), "step": int(step)}
