"""Objective functions the tests run as `kind: python` trainers (tests.objectives:NAME)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time

import tuner


def quadratic(config):
    """Loss decays over steps towards (x - 0.3)^2 (+ y/10 when y is present)."""
    target = (config["x"] - 0.3) ** 2 + config.get("y", 0) / 10
    for step in range(1, config.get("steps", 12) + 1):
        tuner.report(step=step, loss=target + math.exp(-step / 3), pid=os.getpid())


def slow_starter(config):
    """The smaller x, the slower the loss falls and the lower it ends (like xgboost's eta):
    0.5 x + exp(-step (0.2 + x)), best at the last step near x = 0.07, while at step 3
    x = 0.05 trails x = 0.3."""
    x = config["x"]
    for step in range(1, 13):
        tuner.report(step=step, loss=0.5 * x + math.exp(-step * (0.2 + x)))


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


def hangs_for_negative_x(config):
    """Never returns for x < 0 (a hung objective); quick otherwise."""
    if config["x"] < 0:
        while True:
            time.sleep(1)
    for step in range(1, 4):
        tuner.report(step=step, loss=config["x"] + 1 / step)


def dies_once(config):
    """The first attempt of each trial kills its own worker process after two reports;
    the retry runs to the end (a marker file per x in the temp folder says which ran;
    the test removes them first)."""
    marker = dies_once_marker(config["x"])
    me = tuner.current_trial()
    print(f"trial {me.number}, attempt {me.attempt}")
    for step in range(1, 6):
        tuner.report(step=step, loss=config["x"] + 1 / step)
        if step == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)


def dies_once_marker(x):
    return os.path.join(tempfile.gettempdir(), f"tuner-test-dies-once-{x!r}")


def steady(config):
    """Ten reports 0.1 s apart: a trial of about a second."""
    for step in range(1, 11):
        time.sleep(0.1)
        tuner.report(step=step, loss=(config["x"] - 0.2) ** 2 + 1 / step)


def two_parabolas(config):
    """Two objectives with a known Pareto front: f1 = x^2 + y^2, f2 = (x-1)^2 + y^2
    (front: y = 0, 0 <= x <= 1), approached over the steps; `latency_ms` grows with x."""
    x, y = config["x"], config.get("y", 0.0)
    f1, f2 = x**2 + y**2, (x - 1) ** 2 + y**2
    for step in range(1, config.get("steps", 6) + 1):
        extra = math.exp(-step)
        tuner.report(step=step, f1=f1 + extra, f2=f2 + extra, latency_ms=10 + 20 * x)


def u_shaped(config):
    """Loss best at step 4, worse after it (a model that starts to overfit)."""
    for step in range(1, 13):
        tuner.report(step=step, loss=(config["x"] - 0.3) ** 2 + (step - 4) ** 2 / 100)


def chatty(config):
    """Prints who it is (tuner.current_trial()) to stdout, a line to stderr, reports,
    then prints after its last report; x < 0 raises there, x > 0.8 prints 100 KB."""
    import sys

    me = tuner.current_trial()
    print(f"trial {me.number} of {me.study}, attempt {me.attempt}, x={config['x']}")
    print("a warning on stderr", file=sys.stderr)
    tuner.report(step=1, loss=abs(config["x"]))
    if config["x"] > 0.8:
        print("y" * 100_000)
    print("after the last report")
    if config["x"] < 0:
        raise ValueError(f"x must be >= 0 (got {config['x']})")


def brief(config):
    """One report after 50 ms: trials shorter than a trial actor takes to start."""
    time.sleep(0.05)
    tuner.report(step=1, loss=config["x"] ** 2)


def reports_another_metric(config):
    """A user's mistake: reports `acc`, while the study's metric is `loss`."""
    for step in range(3):
        tuner.report(step=step, acc=0.5)


def checkpointed(config):
    """Ten steps; a checkpoint (the step and a running total) after each. It goes on
    from tuner.get_checkpoint() where it has one, and reports `trained` (the steps this
    attempt trained) and `from_step` (where it started). With `die_at` in the config, the
    first attempt kills its own worker process after that step (a marker file per x)."""
    start, total = 0, 0.0
    restored = tuner.get_checkpoint()
    if restored is not None:
        saved = json.loads((restored / "state.json").read_text())
        start, total = saved["step"] + 1, saved["total"]
    marker = dies_once_marker(("checkpointed", config["x"]))
    folder = tempfile.mkdtemp(prefix="tuner-test-ck-")
    for step in range(start, config.get("steps", 10)):
        time.sleep(config.get("sleep", 0))
        total += config["x"]
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"step": step, "total": total}, f)
        tuner.report(
            step=step,
            checkpoint=folder,
            loss=(config["x"] - 0.2) ** 2 + 1 / (step + 1),
            trained=step - start + 1,
            from_step=start,
        )
        if step == config.get("die_at") and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)


def slow_checkpointed(config):
    """`slow`, where even-numbered trials save a checkpoint at every step and go on
    from one (reporting `from_step`, where this attempt began); odd ones save none."""
    me = tuner.current_trial()
    saves = me is not None and me.number % 2 == 0
    start, folder = 1, None
    if saves:
        restored = tuner.get_checkpoint()
        if restored is not None:
            start = int((restored / "step").read_text()) + 1
        folder = tempfile.mkdtemp(prefix="tuner-test-slow-")
    for step in range(start, int(os.environ.get("TUNER_TEST_SLOW_STEPS", 400)) + 1):
        time.sleep(0.05)
        if folder is not None:
            with open(os.path.join(folder, "step"), "w") as f:
                f.write(str(step))
        tuner.report(step=step, checkpoint=folder, loss=config["x"] + 1 / step, from_step=start)


def lineage_toy(config):
    """Gradient descent on x^2 from x = 4 with rate `lr`; a checkpoint (x and the step)
    every step, and a start from tuner.get_checkpoint() where there is one. Reports
    `from_step` (where this trial began) and `x0` (x there)."""
    start, x = 0, 4.0
    restored = tuner.get_checkpoint()
    if restored is not None:
        saved = json.loads((restored / "state.json").read_text())
        start, x = saved["step"] + 1, saved["x"]
    x0 = x
    folder = tempfile.mkdtemp(prefix="tuner-test-pbt-")
    for step in range(start, config.get("steps", 16)):
        time.sleep(0.2)  # the population trains side by side
        x = x * (1 - config["lr"])
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"step": step, "x": x}, f)
        tuner.report(step=step, checkpoint=folder, loss=x * x, from_step=start, x0=x0)
