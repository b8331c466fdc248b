"""What checkpoints cost and what they save, in one run on a local Ray.

- retry cost: a trial of 50 steps whose worker process dies after its 40th step (80%),
  run again by `limits.max_retries`: the steps trained in all, against an undisturbed
  trial's 50, with a checkpoint every step, every 5 steps, and none (the retry starts
  from step 0, as every retry did before checkpoints);
- bandwidth: a 100 MB checkpoint reported from a trial (`tuner.report(checkpoint=)`,
  timed inside the trial) against a plain copy of the same folder into the same disk
  (`shutil.copytree`), the store's bandwidth here;
- xgboost: a 100-round trial (50,000 rows x 20 features, one process) saving a
  checkpoint every 10 rounds against one saving none (`checkpoint_every: 1000`: its final
  model only), 3 runs each, alternated; and the kept model (`Trial.load_model()`)
  predicting the validation rows: its logloss against the trial's recorded value.

    python -m bench.checkpoints [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench._results import publish

STEPS = 50
DIE_AFTER = 40  # steps done when the worker dies: 80 %
MB = 100


def objective(config: dict) -> None:
    """`STEPS` steps of 20 ms; each trained step is appended to `config["log"]`; a
    checkpoint every `every` steps (0: none); the first attempt dies after DIE_AFTER."""
    import tuner

    start = 0
    restored = tuner.get_checkpoint()
    if restored is not None:
        start = json.loads((restored / "state.json").read_text())["step"] + 1
    folder = tempfile.mkdtemp()
    marker = config["log"] + ".died"
    for step in range(start, STEPS):
        time.sleep(0.02)
        with open(config["log"], "a") as f:
            f.write(f"{step}\n")
        checkpoint = None
        if config["every"] and (step + 1) % config["every"] == 0:
            (Path(folder) / "state.json").write_text(json.dumps({"step": step}))
            checkpoint = folder
        tuner.report(step=step, loss=1 / (step + 1), checkpoint=checkpoint)
        if step + 1 == DIE_AFTER and config["die"] and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)


def retry_cost(every: int, die: bool, work: Path) -> int:
    """Steps trained by one trial (both attempts) with a checkpoint every `every`."""
    import tuner

    log = work / f"steps-{every}-{int(die)}.log"
    spec = {
        "name": f"retry-{every}-{int(die)}",
        "metric": "loss",
        "trainer": {"kind": "python", "function": objective, "max_steps": STEPS},
        "search_space": {
            "every": {"type": "int", "values": [every]},
            "die": {"type": "categorical", "choices": [die]},
            "log": {"type": "categorical", "choices": [str(log)]},
        },
        "search": {"algorithm": "grid", "max_concurrent": 1},
        "limits": {"max_retries": 1},
    }
    study = tuner.create_study(spec, storage=f"sqlite:///{work}/bench.db").run(progress=False)
    [trial] = study.trials()
    assert trial.state == "completed" and trial.steps == STEPS, trial
    assert trial.attempts == (2 if die else 1)
    return len(log.read_text().split())


def big_checkpoint(config: dict) -> None:
    """Reports once, with a `MB` MB checkpoint; `write_s` is how long the report took."""
    import tuner

    folder = Path(tempfile.mkdtemp())
    for i in range(4):
        (folder / f"part-{i}.bin").write_bytes(os.urandom(MB * 2**20 // 4))
    started = time.perf_counter()
    tuner.report(step=0, loss=0.0, checkpoint=folder)
    seconds = time.perf_counter() - started
    # Copy the same folder as plainly as can be, for the store's bandwidth here.
    dest = Path(config["plain"]) / "copy"
    started = time.perf_counter()
    shutil.copytree(folder, dest)  # into the page cache, as the store's copy is
    plain = time.perf_counter() - started
    tuner.report(step=1, loss=0.0, write_s=seconds, plain_s=plain)
    shutil.rmtree(folder)


def bandwidth(work: Path) -> tuple[float, float]:
    import tuner

    plain = work / "plain"
    plain.mkdir()
    spec = {
        "name": "bandwidth",
        "metric": "loss",
        "trainer": {"kind": "python", "function": big_checkpoint, "max_steps": 2},
        "search_space": {"plain": {"type": "categorical", "choices": [str(plain)]}},
        "search": {"algorithm": "grid", "max_concurrent": 1},
    }
    study = tuner.create_study(spec, storage=f"sqlite:///{work}/bw.db").run(progress=False)
    [trial] = study.trials()
    return trial.metrics["write_s"], trial.metrics["plain_s"]


def xgboost_trial(every: int, work: Path, run: int) -> tuple[float, float]:
    """One 100-round xgboost trial: (its duration, |model's logloss - recorded value|)."""
    import numpy as np
    import xgboost as xgb

    import tuner
    from tuner.data import load_dataset

    spec = {
        "name": f"xgb-{every}-{run}",
        "metric": "valid_logloss",
        "trainer": {
            "kind": "xgboost",
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "max_rounds": 100,
            "checkpoint_every": every,
            "dataset": {
                "source": "synthetic",
                "task": "classification",
                "n_rows": 50_000,
                "n_features": 20,
                "seed": 0,
            },
        },
        "search_space": {"max_depth": {"type": "int", "values": [6]}},
        "search": {"algorithm": "grid", "max_concurrent": 1},
    }
    study = tuner.create_study(spec, storage=f"sqlite:///{work}/xgb.db").run(progress=False)
    [trial] = study.trials()
    assert trial.state == "completed" and trial.duration_s is not None
    booster = trial.load_model()
    data = load_dataset(study.spec.trainer.dataset, study.spec.base_dir)
    p = np.clip(booster.predict(xgb.DMatrix(data.X_valid)), 1e-15, 1 - 1e-15)
    y = data.y_valid
    logloss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return trial.duration_s, abs(logloss - trial.metrics["valid_logloss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines = [
        "| checkpoint | steps trained (50-step trial, worker killed after step 40) "
        "| vs undisturbed |",
        "|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        undisturbed = retry_cost(1, False, work)
        for every, label in ((1, "every step"), (5, "every 5 steps"), (0, "none")):
            trained = retry_cost(every, True, work)
            lines.append(f"| {label} | {trained} | {trained / undisturbed:.2f}x |")
        write_s, plain_s = bandwidth(work)
        times: dict[int, list[float]] = {10: [], 1000: []}
        worst = 0.0
        for run in range(3):
            for every in (10, 1000) if run % 2 == 0 else (1000, 10):
                seconds, diff = xgboost_trial(every, work, run)
                times[every].append(seconds)
                worst = max(worst, diff)
    with_ck, without = sorted(times[10])[1], sorted(times[1000])[1]
    lines += [
        "",
        f"A {MB} MB checkpoint reported from a trial: {write_s:.2f} s "
        f"({MB / write_s:.0f} MB/s); a plain copy of the folder on the same disk: "
        f"{plain_s:.2f} s ({MB / plain_s:.0f} MB/s): {write_s / plain_s:.2f}x.",
        "",
        "| xgboost trial, 100 rounds, 50,000 rows | median of 3 s | vs no checkpoints |",
        "|---|---|---|",
        f"| a checkpoint every 10 rounds | {with_ck:.2f} | {with_ck / without:.3f}x |",
        f"| none (the final model only) | {without:.2f} | 1.000x |",
        "",
        f"The kept model's logloss on the validation rows differs from the trial's "
        f"recorded value by at most {worst:.1e} (6 trials).",
    ]
    publish(args.out, f"Checkpoints: retry cost and bandwidth ({time.strftime('%Y-%m-%d')})", lines)


if __name__ == "__main__":
    main()
