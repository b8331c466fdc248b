"""Checks and encodings the storage applies before anything reaches the database.

Every function here raises :class:`~tuner.exceptions.StorageRefused` (a subclass of
StorageError) with a one-line
message on bad input; none of them touches the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tuner.exceptions import StorageRefused
from tuner.storage._records import TERMINAL_TRIAL_STATES, TrialFinished, TrialStarted, TrialState


def checked_start(event_: TrialStarted, where: str) -> TrialStarted:
    """The start event, checked (aware time, node text, number an int >= 0)."""
    require_aware(event_.started_at, f"{where}: started_at")
    require_optional_text(event_.node, f"{where}: node")
    if not isinstance(event_.number, int) or isinstance(event_.number, bool) or event_.number < 0:
        raise StorageRefused(f"cannot write trial events: {where}: number must be an int >= 0")
    parent = event_.parent
    if parent is not None and (
        not isinstance(parent, int) or isinstance(parent, bool) or parent < 0
    ):
        raise StorageRefused(
            f"cannot write trial events: {where}: parent must be a trial number or None "
            f"(got {parent!r})"
        )
    return event_


def checked_finish(event_: TrialFinished, where: str) -> TrialFinished:
    """The finish event, checked, with its numbers as floats and its state as a plain value."""
    if event_.state not in TERMINAL_TRIAL_STATES:
        raise StorageRefused(
            f"cannot write trial events: {where}: a finished trial's state must be one of "
            f"{TERMINAL_TRIAL_STATES} (got {event_.state!r})"
        )
    require_aware(event_.finished_at, f"{where}: finished_at")
    require_optional_text(event_.node, f"{where}: node")
    require_optional_text(event_.error, f"{where}: error")
    return TrialFinished(
        study_id=event_.study_id,
        number=event_.number,
        # The value, never the member: psycopg dumps an Enum by its name.
        state=TrialState(event_.state).value,
        finished_at=event_.finished_at,
        duration_s=as_float(event_.duration_s, f"{where}: duration_s", optional=True),
        metrics=event_.metrics,
        value=as_float(event_.value, f"{where}: value", optional=True),
        error=event_.error,
        node=event_.node,
    )


def checked_metrics(metrics: Mapping[str, Any], where: str) -> dict[str, float]:
    """Metric name -> float; refuses a non-dict, an empty name or a non-number."""
    if not isinstance(metrics, Mapping):
        raise StorageRefused(
            f"cannot write trial events: {where}: metrics must be a dict "
            f"(got {type(metrics).__name__})"
        )
    checked: dict[str, float] = {}
    for name, raw in metrics.items():
        if not isinstance(name, str) or not name:
            raise StorageRefused(f"cannot write trial events: {where}: metric name {name!r}")
        value = as_float(raw, f"{where}: metric {name!r}")
        assert value is not None
        checked[name] = value
    return checked


def encode_params(params: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The ``trial_params`` rows (``name, value_json, value_float``) of a trial's parameters."""
    if not isinstance(params, Mapping):
        raise StorageRefused(
            f"cannot write trial events: {where}: params must be a dict "
            f"(got {type(params).__name__})"
        )
    rows = []
    for name, raw in params.items():
        if not isinstance(name, str) or not name:
            raise StorageRefused(f"cannot write trial events: {where}: parameter name {name!r}")
        value = plain(raw)
        try:
            value_json = dumps(value)
        except (TypeError, ValueError):
            raise StorageRefused(
                f"cannot write trial events: {where}: parameter {name!r} is a "
                f"{type(raw).__name__} ({raw!r}); store int, float, str or bool"
            ) from None
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = nan_to_none(float(value))
            except OverflowError:  # an int too large for a double: no range filter
                number = None
        rows.append({"name": name, "value_json": value_json, "value_float": number})
    return rows


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    """Compact JSON of ``value`` (numpy scalars as plain values)."""
    # NaN and +-Infinity are written as JSON's common extension tokens, which
    # Python's json reads back; the column is text, so no backend rejects them.
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        plain = item()
        if isinstance(plain, bool | int | float | str):
            return plain
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def plain(value: Any) -> Any:
    """A numpy scalar or a subclass (IntEnum, numpy.float64) as the plain Python value."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    item = getattr(value, "item", None)
    if callable(item):
        plain = item()
        if type(plain) in (bool, int, float, str):
            return plain
    return value


def as_float(value: Any, what: str, *, optional: bool = False) -> float | None:
    """``value`` as a float (None where ``optional``); refuses strings and non-numbers."""
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or value is None:
        raise StorageRefused(f"cannot write trial events: {what} must be a number (got {value!r})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StorageRefused(
            f"cannot write trial events: {what} must be a number (got {value!r})"
        ) from None


def nan_to_none(value: float | None) -> float | None:
    """None for NaN (it cannot be ranked or stored by every backend), else the value."""
    return None if value is None or math.isnan(value) else value


def require_text(what: str, value: Any) -> None:
    """Refuse a value that is not a non-empty string."""
    if not isinstance(value, str) or not value:
        raise StorageRefused(f"{what} must be a non-empty string (got {value!r})")


def require_optional_text(value: Any, what: str) -> None:
    """Refuse a value that is neither a string nor None."""
    if value is not None and not isinstance(value, str):
        raise StorageRefused(f"cannot write trial events: {what} must be a string or None")


def require_aware(value: Any, what: str) -> None:
    """Refuse a value that is not a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StorageRefused(
            f"cannot write trial events: {what} must be a timezone-aware datetime "
            f"(got {value!r}); use datetime.now(UTC)"
        )
