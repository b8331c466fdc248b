"""Loading a spec's dataset into train and validation arrays.

The arrays are float32 and C-contiguous: the driver puts the Dataset in Ray's object
store once (``tune.with_parameters``) and every trial maps the same pages, read-only,
instead of holding its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuner.exceptions import SpecError

if TYPE_CHECKING:
    from tuner.spec import DatasetSpec

# Rows generated at a time by `source: synthetic` (bounds its temporaries).
_SYNTHETIC_CHUNK = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """Train and validation splits; `n_classes` is 0 for regression.

    With `folds` (k-fold cross-validation) every row is in X_train/y_train, X_valid is
    empty, and the trainer splits the rows into `folds` folds (seeded by `seed`).
    Class labels are encoded as 0..n_classes-1; `class_names` holds the originals.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    n_classes: int
    folds: int = 0
    seed: int = 0
    class_names: tuple[object, ...] = ()

    @property
    def task(self) -> str:
        return "regression" if self.n_classes == 0 else "classification"

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.X_train, self.y_train, self.X_valid, self.y_valid))


_SKLEARN_TASKS = {
    "iris": "classification",
    "wine": "classification",
    "digits": "classification",
    "breast_cancer": "classification",
    "diabetes": "regression",
}


def load_dataset(
    spec: DatasetSpec, base_dir: str | None = None, task: str | None = None
) -> Dataset:
    """Read (or generate) the data and split it, stratified for classification.

    Args:
        spec: the dataset block of a trainer.
        base_dir: where a relative csv/parquet path is looked up first (the spec's folder).
        task: the task the trainer needs when the spec sets none (a classifier
            estimator: classification).

    Raises:
        SpecError: a csv/parquet path that does not exist, a missing column, a column
            that is not numeric (see :func:`tuner.data._files.open_source`).
    """
    if spec.source == "sklearn":
        from sklearn import datasets

        assert spec.name is not None  # the spec requires it
        X, y = getattr(datasets, f"load_{spec.name}")(return_X_y=True)
        return _split(
            np.ascontiguousarray(X, dtype=np.float32),
            np.asarray(y, dtype=np.float32),
            _SKLEARN_TASKS[spec.name],
            spec,
        )
    if spec.source == "synthetic":
        return _synthetic(spec, spec.task or task or "classification")
    return _from_files(spec, base_dir, task)


def _split(X: np.ndarray, y: np.ndarray, task: str, spec: DatasetSpec) -> Dataset:
    n_classes = len(np.unique(y)) if task == "classification" else 0
    if spec.folds:
        return Dataset(X, y, X[:0], y[:0], n_classes, spec.folds, spec.seed)
    from sklearn.model_selection import train_test_split

    X_tr, X_va, y_tr, y_va = train_test_split(
        X,
        y,
        test_size=spec.valid_share,
        random_state=spec.seed,
        stratify=y if task == "classification" else None,
    )
    return Dataset(X_tr, y_tr, X_va, y_va, n_classes, 0, spec.seed)


def _synthetic(spec: DatasetSpec, task: str) -> Dataset:
    """Gaussian features; the target depends on `n_informative` of them.

    Generated straight into one float32 matrix, a chunk of rows at a time, so millions
    of rows cost the matrix and nothing more. Rows are independent, so the validation
    rows are simply the last ones: train and valid are views, not copies.
    """
    n, d = spec.n_rows, spec.n_features
    k = spec.n_informative or max(1, d // 2)
    rng = np.random.default_rng(spec.seed)
    informative = rng.choice(d, size=k, replace=False)
    # Every informative feature matters: weights of magnitude 0.5 to 1.5.
    weights = (rng.uniform(0.5, 1.5, k) * rng.choice([-1.0, 1.0], k)).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    y = np.empty(n, dtype=np.float32)
    noise_scale = np.float32(0.5 * np.sqrt(k))
    for start in range(0, n, _SYNTHETIC_CHUNK):
        block = X[start : start + _SYNTHETIC_CHUNK]
        rng.standard_normal(out=block, dtype=np.float32)
        signal = block[:, informative] @ weights
        if k >= 2:  # one interaction, so that trees and linear models differ
            signal += block[:, informative[0]] * block[:, informative[1]]
        noise = rng.standard_normal(len(block), dtype=np.float32) * noise_scale
        if task == "classification":
            y[start : start + len(block)] = (signal + noise) > 0
        else:
            y[start : start + len(block)] = signal + 0.2 * noise
    n_classes = 2 if task == "classification" else 0
    if spec.folds:
        return Dataset(X, y, X[:0], y[:0], n_classes, spec.folds, spec.seed)
    n_valid = max(1, round(n * spec.valid_share))
    cut = n - n_valid
    return Dataset(X[:cut], y[:cut], X[cut:], y[cut:], n_classes, 0, spec.seed)


def _from_files(spec: DatasetSpec, base_dir: str | None, task: str | None) -> Dataset:
    from tuner.data._files import _column, _where, open_source

    source = open_source(spec, base_dir)
    task = spec.task or task or ("regression" if source.target_is_float else "classification")
    table = source.read_table()
    n = table.num_rows
    if n < 2:
        raise SpecError(f"{spec.path} has {n} rows; a study needs at least 2", _where("path"))
    raw = _column(table, source.target)
    missing = int(table.column(source.target).null_count)
    if missing:
        raise SpecError(
            f"target column {source.target!r} has {missing} missing values; drop those rows",
            _where("target"),
        )
    if task == "classification":
        names, codes = np.unique(raw, return_inverse=True)
        y = codes.astype(np.float32)
        class_names = tuple(names.tolist())
        if len(names) < 2:
            raise SpecError(
                f"target column {source.target!r} holds a single class ({names[0]!r}); "
                "a classifier needs at least 2",
                _where("target"),
            )
    else:
        y = raw.astype(np.float32)
        class_names = ()
    n_classes = len(class_names)
    if spec.folds:
        train_idx, valid_idx = np.arange(n), np.arange(0)
    else:
        train_idx, valid_idx = _split_indices(n, y if n_classes else None, spec)
    # One float32 column at a time into the final arrays: no full-size temporary.
    X_train = np.empty((len(train_idx), len(source.features)), dtype=np.float32)
    X_valid = np.empty((len(valid_idx), len(source.features)), dtype=np.float32)
    for j, name in enumerate(source.features):
        col = _column(table, name)
        X_train[:, j] = col[train_idx]
        X_valid[:, j] = col[valid_idx]
    del table
    return Dataset(
        X_train,
        np.ascontiguousarray(y[train_idx]),
        X_valid,
        np.ascontiguousarray(y[valid_idx]),
        n_classes,
        spec.folds or 0,
        spec.seed,
        class_names,
    )


def _split_indices(
    n: int, codes: np.ndarray | None, spec: DatasetSpec
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    try:
        train, valid = train_test_split(
            rows, test_size=spec.valid_share, random_state=spec.seed, stratify=codes
        )
    except ValueError:  # a class too rare to stratify: split at random instead
        train, valid = train_test_split(rows, test_size=spec.valid_share, random_state=spec.seed)
    return np.asarray(train), np.asarray(valid)
