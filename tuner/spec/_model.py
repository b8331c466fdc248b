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

from tuner.search._registry import ALGORITHM_NAMES

Scalar = bool | int | float | str
# search.algorithm takes its names from the algorithms' registry (tuner.search).
if TYPE_CHECKING:
    AlgorithmName = str
else:
    AlgorithmName = Literal[ALGORITHM_NAMES]
ALGORITHMS: tuple[str, ...] = ALGORITHM_NAMES
# The schedulers of tuner.schedulers (its registry has a line for each).
SchedulerName = Literal["none", "fifo", "asha", "hyperband", "median"]
SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
# Grid search enumerates int ranges; past this many points a range is surely a mistake.
MAX_GRID_INT_VALUES = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    type: Literal["float"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    values: list[float] | None = Field(default=None, min_length=1)

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
    type: Literal["int"]
    low: int | None = None
    high: int | None = None
    log: bool = False
    step: int = Field(default=1, ge=1)
    values: list[int] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.values)
        if self.step != 1 and self.log:
            raise ValueError("step and log cannot be used together")
        return self


class CategoricalParam(_ParamBase):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

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
    name: SklearnDataset | None = None
    # None: classification for synthetic; for csv/parquet the trainer's estimator decides,
    # else the target's type (float: regression; int, bool, string: classification).
    task: Literal["classification", "regression"] | None = None
    n_rows: int = Field(default=1000, ge=10)
    n_features: int = Field(default=20, ge=1)
    n_informative: int | None = Field(default=None, ge=1)
    path: str | None = Field(default=None, min_length=1)
    target: str | None = Field(default=None, min_length=1)
    features: list[str] | None = Field(default=None, min_length=1)
    # None: 0.2, or no validation split when `folds` is set (see `valid_share`).
    valid_fraction: float | None = Field(default=None, gt=0, lt=1)
    folds: int | None = Field(default=None, ge=2, le=100)
    stream: bool = False
    classes: list[Scalar] | None = Field(
        default=None, min_length=2, description="stream: the target's classes (skips a pass)"
    )
    seed: int = 0

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
        if self.folds is None and self.valid_fraction is None:
            object.__setattr__(self, "valid_fraction", DEFAULT_VALID_FRACTION)
        if self.features is not None and self.target in self.features:
            raise _PathError(("features",), f"must not hold the target column {self.target!r}")
        return self

    @property
    def valid_share(self) -> float:
        """The share of rows that validate (with `folds`: the share of one fold)."""
        return self.valid_fraction or 1 / (self.folds or 5)


class PythonTrainer(_Strict):
    kind: Literal["python"]
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
    kind: Literal["xgboost"]
    dataset: DatasetSpec
    objective: str | None = None
    eval_metric: str | None = None
    num_workers: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        default=1,
        description="data-parallel workers (Ray Train) inside each trial; auto: by data size",
    )
    max_rounds: int = Field(default=100, ge=1)
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
    kind: Literal["sklearn"]
    dataset: DatasetSpec
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
        # DESIGN.md shows `folds` on the trainer; it belongs to the split, in the dataset.
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
    algorithm: AlgorithmName = "tpe"
    num_trials: int = Field(default=20, ge=1, le=1_000_000)
    max_concurrent: int = Field(default=2, ge=1, le=10_000)
    seed: int | None = 0


class EarlyStoppingSpec(_Strict):
    scheduler: SchedulerName = "none"
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3, gt=1)
    min_samples: int = Field(
        default=3, ge=1, description="median: trials needed at a step before it compares"
    )


class ResourcesSpec(_Strict):
    cpus_per_trial: float = Field(default=1, gt=0)
    address: str | None = None


class StudySpec(_Strict):
    """A validated study spec. Build it with :func:`tuner.spec.load_spec`."""

    name: str

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
    mode: Literal["min", "max"] = "min"
    trainer: TrainerSpec
    search_space: dict[str, ParamSpec] = Field(min_length=1)
    search: SearchSpec = Field(default_factory=SearchSpec)
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    storage: str = "sqlite:///tuner.db"
    _base_dir: str = PrivateAttr(default_factory=os.getcwd)

    @property
    def base_dir(self) -> str:
        """The spec file's folder (or the current one): where user modules are found."""
        return self._base_dir

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able data (a callable becomes 'module:qualname')."""
        return self.model_dump(mode="json")

    @model_validator(mode="after")
    def _check(self) -> StudySpec:
        _check_conditions(self.search_space)
        if isinstance(self.trainer, SklearnTrainer):
            for name in self.search_space:
                problem = self.trainer.unknown_step(name)
                if problem:
                    raise _PathError(("search_space", name), problem)
        if self.search.algorithm == "grid":
            _check_grid(self.search_space)
        es = self.early_stopping
        if es.scheduler in ("asha", "hyperband") and es.grace_period > self.trainer.budget:
            raise _PathError(
                ("early_stopping", "grace_period"),
                f"must be <= the trainer's budget {self.trainer.budget} (got {es.grace_period})",
            )
        return self

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
