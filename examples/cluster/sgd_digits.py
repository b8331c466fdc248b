"""A python trainer for examples/cluster/study.yaml: a linear classifier on scikit-learn's
bundled digits, trained epoch by epoch with partial_fit and reported after each epoch."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import tuner


def train(config: dict) -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_valid = scaler.transform(X_train), scaler.transform(X_valid)
    model = SGDClassifier(
        loss="log_loss",
        alpha=config["alpha"],
        eta0=config["eta0"],
        learning_rate="constant",
        penalty=config["penalty"],
        l1_ratio=config.get("l1_ratio", 0.15),
        random_state=0,
    )
    classes = np.unique(y)
    rng = np.random.default_rng(0)
    for epoch in range(1, 13):
        order = rng.permutation(len(X_train))
        for batch in np.array_split(order, 8):
            model.partial_fit(X_train[batch], y_train[batch], classes=classes)
        tuner.report(step=epoch, valid_accuracy=model.score(X_valid, y_valid))
