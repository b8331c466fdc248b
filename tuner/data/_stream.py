"""Streamed csv/parquet datasets (`stream: true`): read batch by batch, never whole.

Which rows validate: row i (counted across the files in their read order) is a
validation row when a seeded hash of i falls below `valid_fraction`, until
:data:`VALID_ROWS` such rows are found; every later row trains. So memory stays flat
as the data grows: the validation rows kept in memory are at most VALID_ROWS, and a
sample of the first :data:`TRAIN_SAMPLE_ROWS` training rows is kept too (to report
``train_<scoring>`` and to fit pipeline steps that cannot learn from a stream).

Classes (classification): taken from the spec (`dataset.classes`) or else from one
pass over the target column alone before any trial starts.

The driver builds a :class:`StreamPlan` once (:func:`plan_stream`); it travels to the
trials through Ray's object store, and each trial reads the files again every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuner.data._files import FileSource, _where, batch_to_numpy, open_source
from tuner.exceptions import SpecError

if TYPE_CHECKING:
    from tuner.spec import DatasetSpec

VALID_ROWS = 50_000
TRAIN_SAMPLE_ROWS = 50_000
_NO_CUTOFF = np.iinfo(np.int64).max


@dataclass(frozen=True)
class StreamPlan:
    source: FileSource
    valid_fraction: float
    seed: int
    cutoff: int  # rows at or past this index all train
    X_valid: np.ndarray
    y_valid: np.ndarray
    X_sample: np.ndarray  # the first training rows, at most TRAIN_SAMPLE_ROWS
    y_sample: np.ndarray
    classes: np.ndarray | None  # None: regression

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.X_valid, self.y_valid, self.X_sample, self.y_sample))

    def is_valid(self, rows: np.ndarray) -> np.ndarray:
        return (row_hash(rows, self.seed) < self.valid_fraction) & (rows < self.cutoff)

    def train_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The training rows of every file, at most `batch_size` rows at a time."""
        row = 0
        for batch in self.source.iter_batches(batch_size):
            X, y = batch_to_numpy(batch, self.source.features, self.source.target)
            rows = np.arange(row, row + len(y), dtype=np.int64)
            row += len(y)
            keep = ~self.is_valid(rows)
            if keep.all():
                yield X, y
            elif keep.any():
                yield X[keep], y[keep]


def row_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) for each row index (splitmix64), the same everywhere."""
    mask = (1 << 64) - 1
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 1) & mask)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def plan_stream(
    spec: DatasetSpec, base_dir: str | None = None, task: str | None = None, batch_size: int = 8192
) -> StreamPlan:
    """Check the files, find the classes, and keep the validation rows (driver side).

    Reads the target column once (classification without `classes`), then only as
    many rows as it takes to find VALID_ROWS validation rows and TRAIN_SAMPLE_ROWS
    training rows.

    Raises:
        SpecError: as :func:`tuner.data._files.open_source`, or the files hold no rows.
    """
    source = open_source(spec, base_dir)
    task = spec.task or task or ("regression" if source.target_is_float else "classification")
    classes: np.ndarray | None = None
    if task == "classification":
        classes = np.asarray(spec.classes) if spec.classes else _classes(source, batch_size)
    valid_X: list[np.ndarray] = []
    valid_y: list[np.ndarray] = []
    sample_X: list[np.ndarray] = []
    sample_y: list[np.ndarray] = []
    n_valid = n_sample = row = 0
    cutoff = _NO_CUTOFF
    for batch in source.iter_batches(batch_size):
        X, y = batch_to_numpy(batch, source.features, source.target)
        rows = np.arange(row, row + len(y), dtype=np.int64)
        row += len(y)
        valid = (row_hash(rows, spec.seed) < spec.valid_share) & (rows < cutoff)
        if cutoff == _NO_CUTOFF and n_valid + int(valid.sum()) >= VALID_ROWS:
            last = np.flatnonzero(valid)[VALID_ROWS - n_valid - 1]
            cutoff = int(rows[last]) + 1
            valid &= rows < cutoff
        valid_X.append(X[valid])
        valid_y.append(y[valid])
        n_valid += int(valid.sum())
        if n_sample < TRAIN_SAMPLE_ROWS:
            take = np.flatnonzero(~valid)[: TRAIN_SAMPLE_ROWS - n_sample]
            sample_X.append(X[take])
            sample_y.append(y[take])
            n_sample += len(take)
        if cutoff != _NO_CUTOFF and n_sample >= TRAIN_SAMPLE_ROWS:
            break
    if n_valid == 0 or n_sample == 0:
        raise SpecError(
            f"{spec.path} has too few rows ({row}) for a validation split of "
            f"{spec.valid_share}; add data or raise valid_fraction",
            _where("path"),
        )
    return StreamPlan(
        source=source,
        valid_fraction=spec.valid_share,
        seed=spec.seed,
        cutoff=cutoff,
        X_valid=np.ascontiguousarray(np.concatenate(valid_X)),
        y_valid=np.concatenate(valid_y),
        X_sample=np.ascontiguousarray(np.concatenate(sample_X)),
        y_sample=np.concatenate(sample_y),
        classes=classes,
    )


def _classes(source: FileSource, batch_size: int) -> np.ndarray:
    """The distinct values of the target: one pass over that column alone."""
    found: set[object] = set()
    for batch in source.iter_batches(max(batch_size, 65536), columns=[source.target]):
        col = batch.column(0)
        if col.null_count:
            raise SpecError(
                f"target column {source.target!r} has missing values; drop those rows",
                _where("target"),
            )
        found.update(np.unique(np.asarray(col.to_numpy(zero_copy_only=False))).tolist())
    if len(found) < 2:
        raise SpecError(
            f"target column {source.target!r} holds {len(found)} class(es); a classifier "
            "needs at least 2",
            _where("target"),
        )
    return np.asarray(sorted(found))  # type: ignore[type-var]
