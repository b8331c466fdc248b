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
