"""Typed study spec: the validated form of a YAML file or a dict.

Everything a user writes in a spec is checked here, once; the rest of `tuner` trusts
these objects. Errors become :class:`tuner.SpecError` in :mod:`tuner.spec._load`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    field_validator,
    model_validator,
)

from tuner import _pareto
from tuner._defaults import DEFAULT_STORAGE
from tuner.schedulers._registry import SCHEDULER_NAMES
from tuner.schedulers._registry import SCHEDULERS as SCHEDULER_REGISTRY
from tuner.search._registry import ALGORITHM_NAMES
from tuner.search._registry import ALGORITHMS as ALGORITHM_REGISTRY

Scalar = bool | int | float | str
# search.algorithm and early_stopping.scheduler take their names from the registries
# (tuner.search, tuner.schedulers), and the rules below from their lines.
if TYPE_CHECKING:
    AlgorithmName = str
    SchedulerName = str
else:
    AlgorithmName = Literal[ALGORITHM_NAMES]
    SchedulerName = Literal[SCHEDULER_NAMES]
ALGORITHMS: tuple[str, ...] = ALGORITHM_NAMES
SCHEDULERS: tuple[str, ...] = SCHEDULER_NAMES
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
# Grid search enumerates int ranges; past this many points a range is surely a mistake.
MAX_GRID_INT_VALUES = 1000


class _Strict(BaseModel):
    # A string literal under a field is its description: docs/spec.md is generated from
    # them (tuner/spec/_docs.py), so the reference cannot drift from the code.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class _ParamBase(_Strict):
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None,
        description="Active only when every named parameter is active and has this value "
        "(or one of these values).",
    )

    def is_active(self, assigned: dict[str, Any]) -> bool:
        """Whether this parameter is active given the parameters assigned so far."""
        if not self.when:
            return True
        for name, expected in self.when.items():
            if name not in assigned:
                return False
            allowed = expected if isinstance(expected, list) else [expected]
            if assigned[name] not in allowed:
                return False
        return True


class FloatParam(_ParamBase):
    """A real number from a range (`low`, `high`) or from explicit `values`."""

    type: Literal["float"]
    """The parameter's type."""
    low: float | None = None
    """Smallest value (inclusive); with `high`, instead of `values`."""
    high: float | None = None
    """Largest value (inclusive); must be > `low`."""
    log: bool = False
    """Sample on a log scale (needs `low` > 0); for rates and regularisation strengths."""
    step: float | None = Field(default=None, gt=0)
    """Discretise the range to `low`, `low`+step, ... (not with `log`)."""
    values: list[float] | None = Field(default=None, min_length=1)
    """Explicit values to choose from; what grid search enumerates."""

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.values)
        if self.step is not None and self.log:
            raise ValueError("step and log cannot be used together")
        for v in [self.low, self.high, *(self.values or [])]:
            if v is not None and not math.isfinite(v):
                raise ValueError(f"must be a finite number (got {v})")
        return self


class IntParam(_ParamBase):
    """An integer from a range (`low`, `high`) or from explicit `values`."""

    type: Literal["int"]
    """The parameter's type."""
    low: int | None = None
    """Smallest value (inclusive); with `high`, instead of `values`."""
    high: int | None = None
    """Largest value (inclusive); must be > `low`."""
    log: bool = False
    """Sample on a log scale (needs `low` > 0)."""
    step: int = Field(default=1, ge=1)
    """Spacing of the values from `low` (not with `log`)."""
    values: list[int] | None = Field(default=None, min_length=1)
    """Explicit values to choose from; what grid search enumerates."""

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.values)
        if self.step != 1 and self.log:
            raise ValueError("step and log cannot be used together")
        return self


class CategoricalParam(_ParamBase):
    """One of a list of choices (strings, numbers or booleans)."""

    type: Literal["categorical"]
    """The parameter's type."""
    choices: list[Scalar] = Field(min_length=1)
    """The distinct values to choose from."""

    @field_validator("choices")
    @classmethod
    def _unique(cls, choices: list[Scalar]) -> list[Scalar]:
        seen: list[Scalar] = []
        for c in choices:
            if c in seen:
                raise ValueError(f"choices must be distinct (got {c!r} twice)")
            seen.append(c)
        return choices


def _check_range(low: float | None, high: float | None, log: bool, values: list | None) -> None:
    if values is not None:
        if low is not None or high is not None:
            raise ValueError("give either low/high or values, not both")
        if len(set(values)) != len(values):
            raise ValueError("values must be distinct")
        return
    if low is None or high is None:
        raise ValueError("needs low and high (or values: [...])")
    if not low < high:
        raise ValueError(f"low must be < high (got low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"low must be > 0 when log is true (got low={low})")


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def _callable_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


FunctionRef = Annotated[
    str | Callable[..., Any],
    PlainSerializer(lambda v: v if isinstance(v, str) else _callable_name(v), return_type=str),
]


SklearnDataset = Literal["iris", "wine", "digits", "breast_cancer", "diabetes"]
SKLEARN_DATASETS: tuple[str, ...] = get_args(SklearnDataset)
FileFormat = Literal["csv", "parquet"]
FILE_SOURCES: tuple[str, ...] = get_args(FileFormat)
DEFAULT_VALID_FRACTION = 0.2


class DatasetSpec(_Strict):
    """Where a trainer's data comes from and how it is split.

    `sklearn`: a bundled set (`name`). `synthetic`: generated in float32 (`task`,
    `n_rows`, `n_features`, `n_informative`). `csv` / `parquet`: a file or a folder of
    files (`path`: local, ``file://``, ``s3://`` or any filesystem pyarrow or fsspec
    opens) with a `target` column; `features` picks the feature columns (default: all
    others). `stream: true` reads the files batch by batch in every epoch instead of
    loading them (sklearn trainer with a partial_fit estimator only).
    """

    source: Literal["sklearn", "synthetic", FileFormat]
    """Where the rows come from: a bundled scikit-learn set, generated data, or files."""
    name: SklearnDataset | None = None
    """source sklearn: which bundled set."""
    task: Literal["classification", "regression"] | None = None
    """synthetic: what to generate (default classification). csv/parquet: default from
    the estimator (a classifier: classification), else the target's type (floats:
    regression; ints, booleans, strings: classification)."""
    n_rows: int = Field(default=1000, ge=10)
    """synthetic: number of rows."""
    n_features: int = Field(default=20, ge=1)
    """synthetic: number of features."""
    n_informative: int | None = Field(default=None, ge=1)
    """synthetic: features that carry signal (default: about half, at most n_features)."""
    path: str | None = Field(default=None, min_length=1)
    """csv/parquet: a file or a folder of files; local (relative paths are looked up
    beside the spec file first), file://, s3://, gs:// or any URL pyarrow or fsspec opens."""
    target: str | None = Field(default=None, min_length=1)
    """csv/parquet: the label column."""
    features: list[str] | None = Field(default=None, min_length=1)
    """csv/parquet: the feature columns (default: every column but the target)."""
    valid_fraction: float | None = Field(default=None, gt=0, lt=1)
    """Share of rows held out to validate (default 0.2; none when `folds` is set)."""
    folds: int | None = Field(default=None, ge=2, le=100)
    """k-fold cross-validation instead of `valid_fraction` (sklearn trainer only); each
    trial reports the mean over folds."""
    stream: bool = False
    """csv/parquet with a partial_fit estimator: read the files batch by batch every
    epoch instead of loading them, for data that does not fit in memory."""
    classes: list[Scalar] | None = Field(default=None, min_length=2)
    """stream: the target's classes (saves one pass over the target column)."""
    seed: int = 0
    """Seed of the split (and of the generated data for synthetic)."""

    @model_validator(mode="before")
    @classmethod
    def _default_valid_fraction(cls, data: Any) -> Any:
        # Hold out DEFAULT_VALID_FRACTION unless folds are given: decided on the input,
        # since the validated model is frozen.
        if (
            isinstance(data, dict)
            and data.get("folds") is None
            and data.get("valid_fraction") is None
        ):
            data = {**data, "valid_fraction": DEFAULT_VALID_FRACTION}
        return data

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if self.source == "sklearn" and self.name is None:
            raise ValueError(f"source sklearn needs name: one of {', '.join(SKLEARN_DATASETS)}")
        if self.source in FILE_SOURCES:
            for key in ("path", "target"):
                if getattr(self, key) is None:
                    raise _PathError((key,), f"is required for source {self.source}")
        else:
            for key in ("path", "target", "features", "classes"):
                if getattr(self, key) is not None:
                    raise _PathError(
                        (key,), f"is for source csv or parquet only (source is {self.source})"
                    )
            if self.stream:
                raise _PathError(
                    ("stream",), f"is for source csv or parquet only (source is {self.source})"
                )
        if self.n_informative is not None and self.n_informative > self.n_features:
            raise _PathError(
                ("n_informative",),
                f"must be <= n_features {self.n_features} (got {self.n_informative})",
            )
        if self.folds is not None:
            if self.valid_fraction is not None:
                raise _PathError(("folds",), "give valid_fraction or folds, not both")
            if self.stream:
                raise _PathError(("folds",), "cannot be used with stream: true; use valid_fraction")
        if self.features is not None and self.target in self.features:
            raise _PathError(("features",), f"must not hold the target column {self.target!r}")
        return self

    @property
    def valid_share(self) -> float:
        """The share of rows that validate (with `folds`: the share of one fold)."""
        return self.valid_fraction or 1 / (self.folds or 5)


class PythonTrainer(_Strict):
    """Your own function: it takes the trial's config and calls ``tuner.report``."""

    kind: Literal["python"]
    """The trainer's kind."""
    function: FunctionRef = Field(description="'package.module:function', or a callable")
    max_steps: int = Field(
        default=100, ge=1, description="most steps a trial reports; early stopping's budget"
    )

    @field_validator("function")
    @classmethod
    def _ref(cls, v: str | Callable[..., Any]) -> str | Callable[..., Any]:
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", v):
            raise ValueError(f"must look like 'package.module:function' (got {v!r})")
        return v

    @property
    def budget(self) -> int:
        return self.max_steps


class XGBoostTrainer(_Strict):
    """Gradient boosting with xgboost: one report per boosting round, in one process or
    data-parallel over Ray Train workers."""

    kind: Literal["xgboost"]
    """The trainer's kind."""
    dataset: DatasetSpec
    """The training data (see trainer.dataset)."""
    objective: str | None = None
    """xgboost's objective, e.g. binary:logistic, multi:softprob, reg:squarederror
    (default: from the task)."""
    eval_metric: str | None = None
    """xgboost's eval metric, reported every round as valid_<name> and train_<name>
    (default: xgboost's for the objective)."""
    num_workers: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        default=1,
        description="data-parallel workers (Ray Train) inside each trial; auto: by data size",
    )
    max_rounds: int = Field(default=100, ge=1)
    """Boosting rounds a trial may run: the budget that early stopping cuts."""
    checkpoint_every: int = Field(default=10, ge=1)
    """Rounds between two checkpoints of a trial's booster (with an artifacts store): a
    retried or resumed trial boosts on from its last one. Its final booster is its
    model either way."""
    params: dict[str, Scalar] = Field(default_factory=dict, description="fixed xgboost params")

    @model_validator(mode="after")
    def _check_dataset(self) -> XGBoostTrainer:
        if self.dataset.folds is not None:
            raise _PathError(("dataset", "folds"), "is for kind sklearn only; use valid_fraction")
        if self.dataset.stream:
            raise _PathError(
                ("dataset", "stream"),
                "is for kind sklearn with a partial_fit estimator only; use stream: false",
            )
        return self

    @property
    def budget(self) -> int:
        return self.max_rounds


# Pipeline steps a sklearn trainer can put before its estimator (tuner.trainers._sklearn).
PipelineStep = Literal[
    "standard_scaler", "minmax_scaler", "pca", "select_k_best", "select_from_model"
]
PIPELINE_STEPS: tuple[str, ...] = get_args(PipelineStep)
ESTIMATOR_STEP = "estimator"


class SklearnTrainer(_Strict):
    """Any scikit-learn estimator, optionally after pipeline steps; partial_fit
    estimators train in mini-batch epochs and report after each."""

    kind: Literal["sklearn"]
    """The trainer's kind."""
    dataset: DatasetSpec
    """The training data (see trainer.dataset)."""
    estimator: str = Field(
        description="import path of a scikit-learn estimator class, e.g. "
        "sklearn.linear_model.SGDClassifier"
    )
    params: dict[str, Scalar] = Field(
        default_factory=dict, description="fixed params (step__param for pipeline steps)"
    )
    pipeline: list[PipelineStep] = Field(
        default_factory=list, description="steps before the estimator, in order"
    )
    scoring: str | None = Field(
        default=None, description="a scikit-learn scorer name; default accuracy or r2"
    )
    max_epochs: int = Field(default=50, ge=1, description="epochs of a partial_fit estimator")
    batch_size: int = Field(default=1024, ge=1, description="rows per partial_fit call")

    @model_validator(mode="before")
    @classmethod
    def _folds_on_trainer(cls, data: Any) -> Any:
        # `folds` is accepted on the trainer too, where users reach for it; it belongs to the
        # split, so it moves to the dataset.
        if isinstance(data, dict) and "folds" in data:
            data = dict(data)
            folds = data.pop("folds")
            dataset = data.get("dataset")
            if isinstance(dataset, dict):
                if dataset.get("folds") is not None:
                    raise _PathError(("folds",), "is set twice; keep dataset.folds only")
                data["dataset"] = {**dataset, "folds": folds}
        return data

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", v):
            raise ValueError(
                f"must be an import path like sklearn.linear_model.SGDClassifier (got {v!r})"
            )
        return v

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, v: list[str]) -> list[str]:
        for step in v:
            if v.count(step) > 1:
                raise ValueError(f"step {step!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _check_params(self) -> SklearnTrainer:
        for name in self.params:
            where = ("params", name)
            problem = self.unknown_step(name)
            if problem:
                raise _PathError(where, problem)
        return self

    def unknown_step(self, name: str) -> str | None:
        """Why a `step__param` name names no step of this pipeline (None: it is fine)."""
        step, sep, _ = name.partition("__")
        if not sep or step == ESTIMATOR_STEP or step in self.pipeline:
            return None
        steps = ", ".join(self.pipeline) or "none"
        return (
            f"{step!r} is not a step of trainer.pipeline (steps: {steps}); add it to the "
            f"pipeline, or use a bare name for an estimator param"
        )

    @property
    def budget(self) -> int:
        return self.max_epochs


TrainerSpec = Annotated[
    PythonTrainer | XGBoostTrainer | SklearnTrainer, Field(discriminator="kind")
]


class SearchSpec(_Strict):
    """How new trials are proposed."""

    algorithm: AlgorithmName = "tpe"
    """grid: every combination of `values`; random; tpe, gp, cmaes, qmc, nsga2, nsga3:
    Optuna's samplers (gp needs `pip install 'tuner[gp]'`); bohb: TPE fitted at
    Hyperband's rungs, so trials stopped early inform the search (needs early_stopping
    asha or hyperband; one objective); auto: picks one from the space and the budget,
    stored and shown as e.g. auto→gp: tpe for a conditional or categorical space; else
    qmc when every trial is in flight at once; else gp up to 200 trials with at most a
    quarter of them in flight (torch installed); else tpe. With several `objectives`:
    nsga2, nsga3, tpe, gp, random, qmc, auto (or grid). pbt, pb2: Population Based
    Training as lineage: `population` trials train at once; every
    `perturbation_interval` steps a trial in the bottom `quantile_fraction` is cut
    (pruned) and a new trial starts from a top trial's checkpoint with mutated
    parameters (pbt: each one 0.8x or 1.2x, or resampled with `resample_probability`;
    pb2: chosen by a GP bandit on how fast each configuration improved), recording
    that trial as its `parent`. Needs an artifacts store and a trainer that saves
    checkpoints; one objective; no early_stopping.scheduler; num_trials is ignored."""
    num_trials: int = Field(default=20, ge=1, le=1_000_000)
    """How many trials to run (grid: ignored, its size is the product of the values)."""
    max_concurrent: int = Field(default=2, ge=1, le=10_000)
    """Trials in flight at once (also bounded by the cluster's CPUs)."""
    seed: int | None = 0
    """Seed of the sampler, for reproducible suggestions; null: a random seed."""
    initial_points: list[dict[str, Scalar]] = Field(default_factory=list)
    """Configs tried first, in this order, before the searcher proposes: each names
    every parameter that is active for it, with a value inside its range (not with
    grid). They count towards num_trials. Trials are numbered as they start, so with
    several in flight the first ones may start (and be numbered) in another order."""
    population: int = Field(default=8, ge=2, le=10_000)
    """pbt, pb2: trials training at once, the first of them sampled at random."""
    perturbation_interval: int = Field(default=4, ge=1)
    """pbt, pb2: steps between two times a trial is compared with the population."""
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    """pbt, pb2: the share of the population that is cut (the bottom) and that donors
    come from (the top)."""
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    """pbt: the chance that a mutated parameter is drawn afresh from its range instead
    of moved 0.8x or 1.2x (a categorical one: to a neighbouring choice)."""


class EarlyStoppingSpec(_Strict):
    """When a running trial is stopped early (pruned), measured in its reports."""

    scheduler: SchedulerName = "none"
    """none/fifo: never; asha: successive halving, asynchronous; hyperband: ASHA over
    several brackets; median: stop a trial below the median of others at the same step;
    percentile: stop a trial whose best so far is outside the best `percentile` % of the
    other trials' best so far at the same step (Optuna's PercentilePruner); extrapolate:
    stop a trial once its own curve, followed to the budget with its fall per doubling
    of the steps shrinking as it did over the last two doublings, ends worse than the best
    value of the trials that ended on their own (judged from its 4th report on), so a
    curve still falling steeply is kept however far behind it is; the search algorithm is told a
    trial it stops as completed with its value at the stop. With several objectives:
    none/fifo, or asha ranking each rung as `multi_objective` says (hyperband, median,
    percentile and extrapolate take one objective)."""
    grace_period: int = Field(default=1, ge=1)
    """Steps (rounds, epochs) every trial gets before a scheduler can stop it."""
    reduction_factor: float = Field(default=3, gt=1)
    """asha/hyperband: 1/reduction_factor of the trials go on at each rung."""
    min_samples: int = Field(
        default=3,
        ge=1,
        description="median, percentile: trials needed at a step before it compares; "
        "extrapolate: trials that must have ended on their own before any is stopped",
    )
    percentile: float = Field(default=25, gt=0, lt=100)
    """percentile: the share (in %) of the other trials at a step that a trial must be
    among the best of to go on (50 is a median rule on the best so far)."""
    patience: int | None = Field(default=None, ge=1)
    """With any scheduler (none too): a trial stops itself, and completes, once its
    metric has not improved (by more than `min_delta`) for `patience` reports in a row,
    as xgboost's early_stopping_rounds does. null: never. One objective."""
    min_delta: float = Field(default=0, ge=0)
    """patience: the least change of the metric that counts as an improvement."""
    trial_value: Literal["last", "best"] = "last"
    """A trial's value and metrics (what best, the searcher and the dashboard see):
    its last report, or its best one (the model at its best step, which xgboost keeps
    with early_stopping_rounds; a python trainer must keep that model itself). One
    objective."""
    multi_objective: Literal["nondominated", "scalarized"] = "nondominated"
    """asha with several objectives: how a rung ranks trials. nondominated: by
    non-dominated sorting, ties broken by crowding distance (MO-ASHA, Schmucker et al.
    2021); scalarized: by the weighted sum of the objectives (each signed so that lower
    is better). none/fifo need nothing; hyperband, median, percentile and extrapolate take
    one objective only."""
    weights: list[Annotated[float, Field(gt=0)]] | None = Field(default=None, min_length=2)
    """multi_objective scalarized: one positive weight per objective, in the order of
    `objectives` (default: all 1)."""


class ObjectiveSpec(_Strict):
    """One objective of a multi-objective study."""

    metric: str = Field(min_length=1)
    """A reported metric, e.g. valid_logloss or model_size_mb."""
    mode: Literal["min", "max"] = "min"
    """Whether it is minimised or maximised."""


class ConstraintSpec(_Strict):
    """A bound on a reported metric: a trial is feasible when every constraint holds."""

    metric: str = Field(min_length=1)
    """The reported metric the bound applies to (its last reported value)."""
    min: float | None = None
    """The metric must be >= min."""
    max: float | None = None
    """The metric must be <= max."""

    @model_validator(mode="after")
    def _check(self) -> ConstraintSpec:
        if self.min is None and self.max is None:
            raise ValueError(
                f"needs a bound: max and/or min (e.g. {{metric: {self.metric}, max: 20}})"
            )
        for v in (self.min, self.max):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"bounds must be finite numbers (got {v})")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must be <= max (got min={self.min}, max={self.max})")
        return self

    def violation(self, value: float | None) -> float:
        """How far `value` is outside the bounds (<= 0: it holds; inf: not reported)."""
        return _pareto.violation(value, self.min, self.max)


class WarmStartSpec(_Strict):
    """An earlier study whose finished trials inform the searcher (not re-run)."""

    study: str
    """The earlier study's name."""
    storage: str | None = None
    """Its storage URL; null: the same storage as this study."""
    fixed: dict[str, Scalar] = Field(default_factory=dict)
    """Parameters of this search space that the earlier study did not search, with the
    value its trials ran with (e.g. {lambda: 1.0}): its trials get these values, so gp,
    which models every parameter together, can learn from them. gp and cmaes leave out
    earlier trials that lack an active parameter of this space; tpe uses them either
    way. Parameters the earlier study did search keep their own values."""

    @field_validator("study")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(NAME_PATTERN, v):
            raise ValueError(f"must be a study name (got {v!r})")
        return v


class ResourcesSpec(_Strict):
    """What each trial takes, and which Ray cluster runs the trials."""

    cpus_per_trial: float = Field(default=1, gt=0)
    """CPUs a trial reserves (fractions allowed); for data-parallel xgboost, each
    worker's (and its threads)."""
    gpus_per_trial: float = Field(default=0, ge=0)
    """GPUs a trial reserves (fractions allowed: 0.5 puts two trials on one GPU); for
    data-parallel xgboost, each worker's, and whole (xgboost's workers cannot share a
    GPU). Ray sets CUDA_VISIBLE_DEVICES in the trial, and xgboost trains with device
    cuda when it gets one."""
    custom: dict[str, float] = Field(default_factory=dict)
    """Ray custom resources a trial (or data-parallel worker) reserves, e.g.
    {accelerator_type_a100: 1} or a resource your nodes declare with ray start --resources."""
    address: str | None = None
    """null: a local Ray started for the study; "auto", "HOST:6379" or "ray://HOST:10001":
    an existing cluster (the spec's folder travels to its nodes)."""

    @field_validator("custom")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if name.upper() in ("CPU", "GPU", "MEMORY", "OBJECT_STORE_MEMORY"):
                raise ValueError(
                    f"{name!r} is not a custom resource; use cpus_per_trial or gpus_per_trial"
                )
            if not (isinstance(amount, int | float) and math.isfinite(amount) and amount > 0):
                raise ValueError(f"{name}: must be a positive number (got {amount!r})")
        return v

    def per_trial(self) -> dict[str, float]:
        """The Ray resources of one trial (or one data-parallel worker), Ray Tune's way:
        ``{"cpu": .., "gpu": .., **custom}``."""
        out: dict[str, float] = {"cpu": self.cpus_per_trial}
        if self.gpus_per_trial:
            out["gpu"] = self.gpus_per_trial
        return {**out, **self.custom}


class LimitsSpec(_Strict):
    """How long trials and the study may run, and how failures are handled."""

    trial_timeout_s: float | None = Field(default=None, gt=0)
    """Seconds a trial may run; past it the trial is stopped and recorded as failed
    ("timed out after N s") and the study goes on. null: no limit."""
    max_failed_trials: int | None = Field(default=None, ge=1)
    """Stop the study as failed once this many trials of a run have failed (the message
    names the first error). null: never; the study fails only if every trial fails."""
    max_retries: int = Field(default=1, ge=0, le=100)
    """Times a trial is run again when its worker process or node died (not when its
    objective raised); it keeps its number and params and records each attempt's error."""
    study_timeout_s: float | None = Field(default=None, gt=0)
    """Seconds the whole run may take; past it running trials are stopped and the study
    is recorded as stopped (`tuner resume NAME` continues it). null: no limit."""


class ArtifactsSpec(_Strict):
    """Where trials' checkpoints and models are stored, and how many are kept."""

    store: str | None = Field(default=None, min_length=1)
    """A folder every node of the cluster sees (a path, relative to the current folder,
    or file://...) or an fsspec URL such as s3://bucket/prefix or gs://bucket/prefix
    (s3 needs `pip install 'tuner[s3]'`; an S3-compatible endpoint and its credentials
    come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... as for any AWS tool). null: a
    folder beside a SQLite database file, `<db stem>-artifacts` (tuner.db:
    tuner-artifacts); with PostgreSQL, give one to keep checkpoints and models (without
    a store, trials save none). Checked (written, read back and, on a cluster, read by
    every node) before the first trial runs."""
    keep: int = Field(default=3, ge=1)
    """The models of the best `keep` completed trials are kept (by the study's metric;
    several objectives: by the first, then the next). A running trial keeps its latest
    checkpoint; a finished trial's other files are deleted as it ends, and a model as
    it falls out of the best."""


class StudySpec(_Strict):
    """A validated study spec. Build it with :func:`tuner.spec.load_spec`."""

    name: str
    """The study's name, unique in its storage: 1-128 letters, digits, '-', '_', '.'."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(NAME_PATTERN, v):
            raise ValueError(
                f"must be 1-128 letters, digits, '-', '_' or '.', starting with a letter "
                f"or digit (got {v!r})"
            )
        return v

    metric: str = Field(min_length=1)
    """The reported metric that search and early stopping use, e.g. valid_logloss. With
    `objectives`, the first objective's (set for you)."""
    mode: Literal["min", "max"] = "min"
    """Whether `metric` is minimised or maximised."""
    objectives: list[ObjectiveSpec] | None = Field(default=None, min_length=2)
    """Two or more objectives, instead of metric/mode: the study searches for the Pareto
    set (trials no other feasible trial beats on every objective)."""
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    """Bounds on reported metrics; a trial is feasible when every bound holds, and only
    feasible trials can be best (or on the Pareto set)."""
    warm_start: WarmStartSpec | None = None
    """An earlier study whose finished trials the searcher learns from before the first
    suggestion; they are not copied or run again. Parameters outside this space are
    dropped (with a note)."""
    trainer: TrainerSpec
    """What each trial trains, on which data (see trainer, by kind)."""
    search_space: dict[str, ParamSpec] = Field(min_length=1)
    """Parameter name -> its range (see search_space.NAME), or the name of a built-in or
    local search space file (search_space: xgboost)."""
    search: SearchSpec = Field(default_factory=SearchSpec)
    """How trials are proposed (see search)."""
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    """When trials are stopped early (see early_stopping)."""
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    """What each trial reserves and where it runs (see resources)."""
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    """Timeouts, failures and retries (see limits)."""
    artifacts: ArtifactsSpec = Field(default_factory=ArtifactsSpec)
    """Where checkpoints and models are stored (see artifacts)."""
    storage: str = DEFAULT_STORAGE
    """Any SQLAlchemy URL: SQLite for one machine, PostgreSQL
    (postgresql://user@host:5432/db) for a cluster. The CLI's --storage (create_study's
    storage=) overrides it; when the spec sets none, $TUNER_STORAGE, then this default."""
    _base_dir: str = PrivateAttr(default_factory=os.getcwd)

    @property
    def base_dir(self) -> str:
        """The spec file's folder (or the current one): where user modules are found."""
        return self._base_dir

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able data (a callable becomes 'module:qualname')."""
        return self.model_dump(mode="json")

    @model_validator(mode="before")
    @classmethod
    def _pbt_checkpoints(cls, data: Any) -> Any:
        # Under pbt a new trial starts from a checkpoint: an xgboost trainer that is not
        # told how often to save one saves one at every comparison at least.
        if not isinstance(data, dict):
            return data
        search, trainer = data.get("search"), data.get("trainer")
        if not (isinstance(search, dict) and isinstance(trainer, dict)):
            return data
        if search.get("algorithm") not in ("pbt", "pb2") or trainer.get("kind") != "xgboost":
            return data
        if "checkpoint_every" in trainer:
            return data
        interval = search.get("perturbation_interval", 4)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            return data  # the field's own validation explains
        return {**data, "trainer": {**trainer, "checkpoint_every": min(10, interval)}}

    @model_validator(mode="before")
    @classmethod
    def _objectives_set_metric(cls, data: Any) -> Any:
        # With objectives, metric/mode are the first objective's: what storage, the
        # progress bar and single-metric code use. They may be given only if they agree
        # (a stored spec carries both).
        if not isinstance(data, dict):
            return data
        objectives = data.get("objectives")
        if objectives is None:
            if data.get("metric") is None:
                raise _PathError(
                    ("metric",),
                    "is required: the metric to optimise (or objectives: [...] for two or more)",
                )
            return data
        if not (isinstance(objectives, list) and objectives and isinstance(objectives[0], dict)):
            return data  # the field's own validation explains
        first = objectives[0]
        metric, mode = first.get("metric"), first.get("mode", "min")
        for key, wanted in (("metric", metric), ("mode", mode)):
            if key in data and data[key] != wanted:
                raise _PathError(
                    (key,),
                    f"give either metric/mode or objectives, not both (got {key}: {data[key]!r} "
                    "and objectives); remove it",
                )
        return {**data, "metric": metric, "mode": mode}

    @model_validator(mode="after")
    def _check(self) -> StudySpec:
        _check_objectives(self)
        _check_initial_points(self)
        _check_warm_fixed(self)
        _check_conditions(self.search_space)
        _check_fixed_not_searched(self)
        if isinstance(self.trainer, SklearnTrainer):
            for name in self.search_space:
                problem = self.trainer.unknown_step(name)
                if problem:
                    raise _PathError(("search_space", name), problem)
        if self.search.algorithm == "grid":
            _check_grid(self.search_space)
        if (
            isinstance(self.trainer, XGBoostTrainer)
            and self.trainer.num_workers != 1
            and 0 < self.resources.gpus_per_trial < 1
        ):
            # Ray packs fractional GPUs onto one device, and xgboost's collective refuses
            # two processes on one CUDA device (seen on an H200: every trial failed).
            raise _PathError(
                ("resources", "gpus_per_trial"),
                "data-parallel xgboost workers cannot share a GPU (xgboost refuses two "
                "processes on one CUDA device); give each worker a whole GPU "
                "(gpus_per_trial: 1) or use trainer.num_workers: 1",
            )
        es = self.early_stopping
        algorithm = ALGORITHM_REGISTRY[self.search.algorithm]
        if algorithm.needs_rungs and not SCHEDULER_REGISTRY[es.scheduler].rungs:
            with_rungs = " or ".join(n for n, s in SCHEDULER_REGISTRY.items() if s.rungs)
            raise _PathError(
                ("search", "algorithm"),
                f"{algorithm.name} fits its model at Hyperband's rungs: set "
                f"early_stopping.scheduler to {with_rungs} (got {es.scheduler}), or use tpe",
            )
        if algorithm.name in ("pbt", "pb2") and es.scheduler not in ("none", "fifo"):
            raise _PathError(
                ("early_stopping", "scheduler"),
                f"{algorithm.name} cuts trials itself (the bottom of the population); "
                f"remove early_stopping.scheduler (got {es.scheduler})",
            )
        every = getattr(self.trainer, "checkpoint_every", None)
        if algorithm.name in ("pbt", "pb2") and every and every > self.search.perturbation_interval:
            raise _PathError(
                ("trainer", "checkpoint_every"),
                f"must be <= search.perturbation_interval {self.search.perturbation_interval} "
                f"under {algorithm.name} (got {every}): a new trial starts from a checkpoint",
            )
        if algorithm.name in ("pbt", "pb2") and (
            self.search.perturbation_interval >= self.trainer.budget
        ):
            raise _PathError(
                ("search", "perturbation_interval"),
                f"must be < the trainer's budget {self.trainer.budget} "
                f"(got {self.search.perturbation_interval}): no trial would ever be compared",
            )
        if self.is_multi_objective and es.patience is not None:
            raise _PathError(
                ("early_stopping", "patience"),
                "takes one objective (a plateau of which?); remove it, or use asha",
            )
        if self.is_multi_objective and es.trial_value != "last":
            raise _PathError(
                ("early_stopping", "trial_value"),
                "best takes one objective (the best of which?); use last",
            )
        if SCHEDULER_REGISTRY[es.scheduler].rungs and es.grace_period > self.trainer.budget:
            raise _PathError(
                ("early_stopping", "grace_period"),
                f"must be <= the trainer's budget {self.trainer.budget} (got {es.grace_period})",
            )
        return self

    @property
    def is_multi_objective(self) -> bool:
        """Whether the study has two or more objectives."""
        return self.objectives is not None

    @property
    def objective_metrics(self) -> list[str]:
        """The objectives' metrics in order (one: the study's metric)."""
        return [o.metric for o in self.objectives] if self.objectives else [self.metric]

    @property
    def objective_modes(self) -> list[Literal["min", "max"]]:
        """The objectives' modes in order (one: the study's mode)."""
        return [o.mode for o in self.objectives] if self.objectives else [self.mode]

    @property
    def ordered_params(self) -> list[tuple[str, FloatParam | IntParam | CategoricalParam]]:
        """Parameters in an order where every `when` condition refers to an earlier one."""
        return _topological(self.search_space)


class _PathError(ValueError):
    """A validation error that knows its key path (for model-level checks)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _check_objectives(spec: StudySpec) -> None:
    es = spec.early_stopping
    if spec.objectives is None:
        changed = {"multi_objective": es.multi_objective != "nondominated", "weights": es.weights}
        for key, set_ in changed.items():
            if set_:
                raise _PathError(
                    ("early_stopping", key),
                    "is for several objectives; remove it (the study has one metric)",
                )
        return
    seen: list[str] = []
    for i, o in enumerate(spec.objectives):
        if o.metric in seen:
            raise _PathError(("objectives", i, "metric"), f"{o.metric!r} is listed twice")
        seen.append(o.metric)
    algorithm = ALGORITHM_REGISTRY[spec.search.algorithm]
    if not algorithm.multi_objective:
        several = ", ".join(n for n, a in ALGORITHM_REGISTRY.items() if a.multi_objective)
        raise _PathError(
            ("search", "algorithm"),
            f"{algorithm.name} optimises one metric; with several objectives use one of {several}",
        )
    if not SCHEDULER_REGISTRY[es.scheduler].multi_objective:
        raise _PathError(
            ("early_stopping", "scheduler"),
            f"{es.scheduler} ranks trials on one metric; with several objectives use asha "
            "(multi_objective: nondominated or scalarized) or none",
        )
    if es.weights is not None:
        if es.multi_objective != "scalarized":
            raise _PathError(
                ("early_stopping", "weights"),
                "is for multi_objective: scalarized; set it, or remove weights",
            )
        if len(es.weights) != len(spec.objectives):
            raise _PathError(
                ("early_stopping", "weights"),
                f"needs one weight per objective ({len(spec.objectives)}, got {len(es.weights)})",
            )


def _check_initial_points(spec: StudySpec) -> None:
    points = spec.search.initial_points
    if not points:
        return
    if spec.search.algorithm == "grid":
        raise _PathError(
            ("search", "initial_points"),
            "grid search runs every point of the grid; remove initial_points or use another "
            "algorithm",
        )
    for i, point in enumerate(points):
        where: tuple[str | int, ...] = ("search", "initial_points", i)
        assigned: dict[str, Any] = {}
        for name, p in spec.ordered_params:
            if not p.is_active(assigned):
                if name in point:
                    raise _PathError(
                        (*where, name),
                        "is not active for this point (its `when` does not hold); remove it",
                    )
                continue
            if name not in point:
                raise _PathError(
                    where, f"is missing parameter {name!r}; give every active parameter a value"
                )
            problem = _outside(p, point[name])
            if problem:
                raise _PathError((*where, name), problem)
            assigned[name] = point[name]
        unknown = sorted(set(point) - set(spec.search_space))
        if unknown:
            known = ", ".join(spec.search_space)
            raise _PathError(
                (*where, unknown[0]), f"is not a parameter of the search space ({known}); remove it"
            )


def _check_warm_fixed(spec: StudySpec) -> None:
    if spec.warm_start is None:
        return
    for name, value in spec.warm_start.fixed.items():
        where = ("warm_start", "fixed", name)
        if name not in spec.search_space:
            known = ", ".join(spec.search_space)
            raise _PathError(where, f"is not a parameter of the search space ({known}); remove it")
        problem = _outside(spec.search_space[name], value)
        if problem:
            raise _PathError(where, problem)


def _outside(p: FloatParam | IntParam | CategoricalParam, value: Any) -> str | None:
    """Why `value` is not a value of parameter `p` (None: it is one)."""
    if isinstance(p, CategoricalParam):
        return None if value in p.choices else f"must be one of {p.choices} (got {value!r})"
    if p.values is not None:
        return None if value in p.values else f"must be one of {p.values} (got {value!r})"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(p, IntParam) and not (number and float(value).is_integer()):
        return f"must be an int (got {value!r})"
    if not number:
        return f"must be a number (got {value!r})"
    assert p.low is not None and p.high is not None
    if not p.low <= value <= p.high:
        return f"must be within [{p.low}, {p.high}] (got {value!r})"
    return None


def _check_conditions(space: dict[str, Any]) -> None:
    for name, p in space.items():
        for ref, expected in (p.when or {}).items():
            where = ("search_space", name, "when", ref)
            if ref == name:
                raise _PathError(where, "a parameter cannot depend on itself")
            if ref not in space:
                known = ", ".join(sorted(space))
                raise _PathError(where, f"names no parameter of the search space ({known})")
            target = space[ref]
            if isinstance(target, CategoricalParam):
                for e in expected if isinstance(expected, list) else [expected]:
                    if e not in target.choices:
                        raise _PathError(
                            where, f"{e!r} is not one of {ref}'s choices {target.choices}"
                        )
    _topological(space)  # raises on a cycle


def _topological(space: dict[str, Any]) -> list[tuple[str, Any]]:
    order: list[tuple[str, Any]] = []
    done: set[str] = set()
    pending = dict(space)
    while pending:
        ready = [n for n, p in pending.items() if set(p.when or {}) <= done]
        if not ready:
            cyclic = ", ".join(sorted(pending))
            raise _PathError(("search_space",), f"conditions form a cycle among: {cyclic}")
        for n in ready:
            order.append((n, pending.pop(n)))
            done.add(n)
    return order


def _check_fixed_not_searched(spec: StudySpec) -> None:
    """A parameter is fixed (trainer.params) or searched (search_space), not both: the
    searched value would silently replace the fixed one in every trial."""
    fixed = getattr(spec.trainer, "params", None) or {}
    both = [name for name in fixed if name in spec.search_space]
    if both:
        name = both[0]
        raise _PathError(
            ("trainer", "params", name),
            f"is fixed here and searched by search_space.{name}; a parameter is one or the "
            f"other: remove it from trainer.params to search it, or leave it out of the "
            f"search space to fix it (a named search space: write it inline, or copy its "
            f"file to search_spaces/ beside the spec, without {name})",
        )


def _check_grid(space: dict[str, Any]) -> None:
    for name, p in space.items():
        if isinstance(p, FloatParam) and p.values is None:
            raise _PathError(
                ("search_space", name),
                "grid search needs explicit values for a float range "
                "(e.g. values: [0.01, 0.1, 0.3]), or use another algorithm",
            )
        if isinstance(p, IntParam) and p.values is None:
            assert p.low is not None and p.high is not None
            if p.log:
                raise _PathError(
                    ("search_space", name),
                    "grid search cannot enumerate a log int range; give values: [...]",
                )
            size = (p.high - p.low) // p.step + 1
            if size > MAX_GRID_INT_VALUES:
                raise _PathError(
                    ("search_space", name),
                    f"grid search would enumerate {size} values; give values: [...] "
                    f"(at most {MAX_GRID_INT_VALUES} from a range)",
                )
