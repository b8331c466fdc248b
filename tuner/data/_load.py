"""Loading a spec's dataset into train and validation arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuner.spec import DatasetSpec


@dataclass(frozen=True)
class Dataset:
    """Train and validation splits; `n_classes` is 0 for regression."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    n_classes: int

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


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Read (or generate) the data and split it, stratified for classification."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if spec.source == "sklearn":
        assert spec.name is not None  # the spec requires it
        X, y = getattr(datasets, f"load_{spec.name}")(return_X_y=True)
        task = _SKLEARN_TASKS[spec.name]
    else:
        task = spec.task
        if task == "classification":
            X, y = datasets.make_classification(
                n_samples=spec.n_rows,
                n_features=spec.n_features,
                n_informative=max(1, spec.n_features // 2),
                random_state=spec.seed,
            )
        else:
            X, y = datasets.make_regression(
                n_samples=spec.n_rows,
                n_features=spec.n_features,
                n_informative=max(1, spec.n_features // 2),
                noise=1.0,
                random_state=spec.seed,
            )
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X,
        y,
        test_size=spec.valid_fraction,
        random_state=spec.seed,
        stratify=y if task == "classification" else None,
    )
    n_classes = len(np.unique(y)) if task == "classification" else 0
    return Dataset(X_tr, y_tr, X_va, y_va, n_classes)
