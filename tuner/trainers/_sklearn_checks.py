"""`kind: sklearn`, in the driver: every check that fails a study before any trial.

Each raises :class:`~tuner.SpecError` with the spec key it is about.
"""

from __future__ import annotations

from typing import Any

from tuner.exceptions import SpecError
from tuner.spec import SklearnTrainer, StudySpec
from tuner.trainers._sklearn_pipeline import first_line, route


def task_of(cls: type, trainer: SklearnTrainer) -> str:
    from sklearn.base import is_classifier, is_regressor

    try:
        instance = cls()
    except TypeError as e:  # required constructor arguments
        raise SpecError(f"cannot build {cls.__name__}() ({e})", ["trainer", "estimator"]) from None
    if is_classifier(instance):
        task = "classification"
    elif is_regressor(instance):
        task = "regression"
    else:
        raise SpecError(
            f"{cls.__name__} is neither a classifier nor a regressor; use one of them",
            ["trainer", "estimator"],
        )
    given = trainer.dataset.task
    if given is not None and given != task:
        raise SpecError(
            f"{cls.__name__} does {task} but the dataset's task is {given}; use a "
            f"{'regressor' if given == 'regression' else 'classifier'} or change the task",
            ["trainer", "dataset", "task"],
        )
    return task


def scoring_name(trainer: SklearnTrainer, task: str) -> str:
    return trainer.scoring or ("accuracy" if task == "classification" else "r2")


def check_scoring(trainer: SklearnTrainer, task: str) -> str:
    from sklearn.metrics import get_scorer, get_scorer_names

    name = scoring_name(trainer, task)
    try:
        get_scorer(name)
    except ValueError:
        examples = [n for n in get_scorer_names() if not n.endswith(("_macro", "_micro"))][:12]
        raise SpecError(
            f"{name!r} is not a scikit-learn scorer (e.g. {', '.join(examples)}, ...; see "
            "sklearn.metrics.get_scorer_names())",
            ["trainer", "scoring"],
        ) from None
    return name


def reported_metrics(trainer: SklearnTrainer, task: str) -> list[str]:
    """The metric names a trial reports (every epoch, or once)."""
    name = scoring_name(trainer, task)
    return [f"valid_{name}", f"train_{name}"]


def check_metric(spec: StudySpec, trainer: SklearnTrainer, task: str) -> None:
    """Raise SpecError before any trial runs if the study's metric is never reported."""
    names = reported_metrics(trainer, task)
    if spec.metric not in names:
        raise SpecError(
            f"the sklearn trainer reports {' and '.join(names)} with scoring "
            f"{scoring_name(trainer, task)!r} (got {spec.metric!r}); set metric to one of "
            "them or change trainer.scoring",
            ["metric"],
        )
    if spec.mode != "max":
        raise SpecError(
            f"scikit-learn scorers are greater-is-better ({spec.metric} too); set mode: max",
            ["mode"],
        )


def check_fixed_params(pipe: Any) -> None:
    """A fixed param every trial would reject fails the study now, not each trial."""
    for _, step in pipe.steps:
        # scikit-learn's own declared constraints (a private hook; absent: skip).
        validate = getattr(step, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except (ValueError, TypeError) as e:
            raise SpecError(first_line(e), ["trainer", "params"]) from None


def check_names(spec: StudySpec, pipe: Any) -> None:
    known = pipe.get_params(deep=True)
    for name in spec.search_space:
        routed = route(name)
        if routed not in known:
            step, _, param = routed.partition("__")
            obj = pipe.named_steps[step]
            own = sorted(obj.get_params(deep=False))
            raise SpecError(
                f"{type(obj).__name__} has no parameter {param!r} (it has: {', '.join(own)})",
                ["search_space", name],
            )
