"""Tuning quality per unit of compute (issue 11): `python -m bench.quality --quick`.

Problems nobody here wrote (COCO/BBOB through cocoex; xgboost, an sklearn pipeline and
SGD on offline data: :mod:`bench.quality._problems`), tuned by tuner's algorithms, the
same Optuna samplers sequentially in memory, bare Ray Tune (its defaults and
OptunaSearch) and hyperopt's TPE (:mod:`bench.quality._ways`); tables and PNG plots
from :mod:`bench.quality._report`; presets and sections in :mod:`bench.quality.__main__`;
warm starts (trials a study saves by learning from an earlier one) in
:mod:`bench.quality._warm`.
"""
