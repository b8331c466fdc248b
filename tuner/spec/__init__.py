"""The study spec: YAML or dict in, validated typed objects out."""

from tuner.spec._load import load_spec
from tuner.spec._model import (
    ALGORITHMS,
    SCHEDULERS,
    ArtifactsSpec,
    CategoricalParam,
    DatasetSpec,
    EarlyStoppingSpec,
    FloatParam,
    IntParam,
    LimitsSpec,
    PythonTrainer,
    ResourcesSpec,
    SearchSpec,
    SklearnTrainer,
    StudySpec,
    XGBoostTrainer,
)

__all__ = [
    "ALGORITHMS",
    "SCHEDULERS",
    "ArtifactsSpec",
    "CategoricalParam",
    "DatasetSpec",
    "EarlyStoppingSpec",
    "FloatParam",
    "IntParam",
    "LimitsSpec",
    "PythonTrainer",
    "ResourcesSpec",
    "SearchSpec",
    "SklearnTrainer",
    "StudySpec",
    "XGBoostTrainer",
    "load_spec",
]
