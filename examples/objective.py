"""A python trainer: a noisy quadratic that "trains" for a number of steps.

examples/python_objective.yaml names it as `function: objective:train`; tuner finds
this module because it sits beside the spec file.
"""

import math

import tuner


def train(config):
    x, y = config["x"], config["y"]
    target = (x - 0.3) ** 2 + (y - 2) ** 2 / 10
    if config.get("optimizer") == "momentum":
        target -= 0.05 * config["momentum"]
    for step in range(1, 31):
        # the loss decays towards the target, as a training curve would
        loss = target + math.exp(-step / 6)
        tuner.report(step=step, loss=loss, accuracy=1 / (1 + loss))


def train_small(config):
    """Two objectives that pull apart: a wider model fits better (loss) but is bigger
    (model_size_mb) and slower (latency_ms, bounded by the spec's constraint)."""
    width, lr = config["width"], config["lr"]
    size_mb = width * width * 4 / 1e6
    target = (math.log10(lr) + 2) ** 2 / 10 + 1 / width
    for step in range(1, 21):
        loss = target + math.exp(-step / 5)
        tuner.report(step=step, loss=loss, model_size_mb=size_mb, latency_ms=2 + width / 64)
