"""The Python API: define a study as a dict, run it, read the best trial.

python examples/api_quickstart.py [STORAGE_URL]
"""

import sys

import tuner


def objective(config):
    for step in range(1, 21):
        loss = (config["lr"] - 0.1) ** 2 + 1.0 / (step * config["width"])
        tuner.report(step=step, loss=loss)


def main(storage: str = "sqlite:///tuner.db") -> tuner.Study:
    study = tuner.create_study(
        {
            "name": "api-quickstart",
            "metric": "loss",
            "mode": "min",
            "trainer": {"kind": "python", "function": objective, "max_steps": 20},
            "search_space": {
                "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                "width": {"type": "int", "low": 8, "high": 256, "log": True},
            },
            "search": {"algorithm": "gp", "num_trials": 10, "max_concurrent": 2, "seed": 0},
            "early_stopping": {"scheduler": "asha", "grace_period": 4},
        },
        storage=storage,
        load_if_exists=True,
    )
    study.run()
    best = study.best_trial
    print(f"best trial #{best.number}: loss={best.value:.4f} params={best.params}")
    print(study.trials_dataframe().head())
    return study


if __name__ == "__main__":
    main(*sys.argv[1:])
