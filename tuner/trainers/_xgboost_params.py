"""`kind: xgboost`, in the driver: unknown xgboost parameters fail the study before
any trial.

xgboost itself is the authority: it trains one round on two rows with the study's
parameters and warns ``Parameters: { "max_dpeth" } are not used`` (a warning that
``verbosity: 0`` hides in the trials). A name can be unused only in some settings (a
dart-only ``rate_drop`` with ``booster: gbtree`` first, ``tweedie_variance_power``
with another objective), so a name unused in the study's setting is probed again under
the other boosters and objectives, and is an error only if no setting uses it. The
check costs one probe (9-100 ms) when every name is known, about 1 s when one is not
(measured: xgboost 3.2 on 2 shared cores).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuner.exceptions import SpecError
from tuner.spec import StudySpec, XGBoostTrainer

log = logging.getLogger(__name__)

# Other settings that use parameters the study's own may not: (booster, objective).
_OTHER_SETTINGS: tuple[dict[str, Any], ...] = (
    {"booster": "gbtree"},
    {"booster": "dart"},
    {"booster": "gblinear"},
    {"objective": "reg:tweedie"},
    {"objective": "reg:pseudohubererror"},
    {"objective": "reg:quantileerror"},
    {"objective": "multi:softprob", "num_class": 2},
    {"objective": "count:poisson"},
    {"objective": "rank:pairwise"},
    {"objective": "survival:aft"},
)
_UNUSED = re.compile(r"Parameters:\s*\{(?P<names>[^}]*)\}\s*(are|is) not used")


def check_params(spec: StudySpec, base: Mapping[str, Any]) -> None:
    """Fail on a parameter xgboost does not know, in trainer.params or search_space.

    Args:
        spec: the study's spec (kind xgboost).
        base: the params every trial starts from (objective, eval_metric, fixed params).

    Raises:
        SpecError: ``search_space.max_dpeth: xgboost has no parameter 'max_dpeth' (did
            you mean 'max_depth'?)``, at the key that names it.
    """
    trainer = spec.trainer
    assert isinstance(trainer, XGBoostTrainer)  # the registry dispatches on kind
    user = {**{n: v for n, v in trainer.params.items()}, **_samples(spec)}
    params = {**base, **user}
    first = _probe(params)
    if first is None:
        return
    unused, known = first
    suspects = [n for n in user if n in unused]
    if not suspects:
        return
    for setting in _OTHER_SETTINGS:
        probed = _probe({**base, **{n: user[n] for n in suspects}, **setting})
        if probed is None:
            continue  # this setting cannot train here: it proves nothing
        known |= probed[1]
        suspects = [n for n in suspects if n in probed[0]]
        if not suspects:
            return
    name = suspects[0]
    where = ["search_space", name] if name in spec.search_space else ["trainer", "params", name]
    raise SpecError(f"xgboost has no parameter {name!r} ({_hint(name, known)})", where)


def _samples(spec: StudySpec) -> dict[str, Any]:
    """One value of each searched parameter (the first of its range or choices)."""
    out: dict[str, Any] = {}
    for name, p in spec.search_space.items():
        values = getattr(p, "values", None) or getattr(p, "choices", None)
        out[name] = values[0] if values else p.low  # type: ignore[union-attr]
    return out


def _probe(params: Mapping[str, Any]) -> tuple[set[str], set[str]] | None:
    """Train one round on two rows: the names xgboost says it did not use, and every
    parameter name its saved config holds; None when xgboost refuses to train (a value
    it refuses, a setting these two rows cannot train): that proves nothing here, and
    the trials report it with xgboost's own message."""
    import numpy as np
    import xgboost as xgb

    probe = {**params, "verbosity": 1, "validate_parameters": True, "nthread": 1}
    probe.pop("device", None)  # a CUDA device the driver may not have
    dtrain = xgb.DMatrix(np.array([[0.0, 1.0], [1.0, 0.0]]), label=np.array([0.0, 1.0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            booster = xgb.train(probe, dtrain, num_boost_round=1)
        except xgb.core.XGBoostError as e:
            log.debug("tuner: xgboost parameter probe failed: %s", e)
            return None
    unused: set[str] = set()
    for w in caught:
        match = _UNUSED.search(str(w.message))
        if match:
            unused |= {n.strip().strip('"') for n in match["names"].split(",") if n.strip()}
    return unused, set(_leaf_keys(json.loads(booster.save_config())))


def _leaf_keys(config: Any) -> Iterable[str]:
    """The parameter names in xgboost's saved config (its section names left out)."""
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(value, dict | list):
                yield from _leaf_keys(value)
            else:
                yield key
    elif isinstance(config, list):
        for value in config:
            yield from _leaf_keys(value)


def _hint(name: str, known: Sequence[str] | set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "see https://xgboost.readthedocs.io/en/stable/parameter.html"
