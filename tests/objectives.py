"""Objective functions the tests run as `kind: python` trainers (tests.objectives:NAME)."""

from __future__ import annotations

import math
import os
import time

import tuner


def quadratic(config):
    """Loss decays over steps towards (x - 0.3)^2 (+ y/10 when y is present)."""
    target = (config["x"] - 0.3) ** 2 + config.get("y", 0) / 10
    for step in range(1, config.get("steps", 12) + 1):
        tuner.report(step=step, loss=target + math.exp(-step / 3), pid=os.getpid())


def conditional(config):
    """Fails the trial if an inactive conditional parameter reaches it."""
    if config["booster"] != "dart" and "rate_drop" in config:
        raise AssertionError("inactive parameter rate_drop was passed")
    if config["booster"] == "dart" and "rate_drop" not in config:
        raise AssertionError("active parameter rate_drop is missing")
    penalty = config.get("rate_drop", 0.0)
    for step in range(1, 4):
        tuner.report(step=step, loss=config["x"] ** 2 + penalty + 1 / step)


def fails_for_negative_x(config):
    """A flaky objective: raises for x < 0."""
    tuner.report(step=1, loss=abs(config["x"]))
    if config["x"] < 0:
        raise ValueError(f"x must be >= 0 for this model (got {config['x']:.3f})")
    tuner.report(step=2, loss=abs(config["x"]) / 2)


def always_fails(config):
    raise RuntimeError("the data loader is broken")


def nan_at_step_2(config):
    tuner.report(step=1, loss=1.0)
    tuner.report(step=2, loss=float("nan"))


def returns_value(config):
    """No report at all: the returned number is the trial's result."""
    return (config["x"] - 0.5) ** 2


def slow(config):
    """Long enough to be stopped from outside ($TUNER_TEST_SLOW_STEPS steps of 50 ms)."""
    for step in range(1, int(os.environ.get("TUNER_TEST_SLOW_STEPS", 400)) + 1):
        time.sleep(0.05)
        tuner.report(step=step, loss=config["x"] + 1 / step)
