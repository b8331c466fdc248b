"""Every private name of Ray and Optuna that tuner touches goes through here.

The rule: a module of tuner that needs something its dependency does not promise to
keep (a module whose path has an underscore, a function, constant or class attribute
whose name starts with one, a private attribute of their objects, a method of theirs it
overrides, a module constant it switches) gets it from this package, never from the
dependency itself, and the package has a check for it in :data:`CHECKS`. One fast test
(tests/test_compat.py) runs every check, so an upgrade that removes or reshapes one fails
that test, not a user's run. The pandas habit (pandas/compat): one module per dependency,

- :mod:`tuner._compat.optuna`: the constraint key, the hypervolume routine, the GP
  internals the kriging believer reads, the genetic samplers' lock, a logger's name,
  QMC's count of the points it used;
- :mod:`tuner._compat.ray`: the single-machine switch, the GCS key-value store (a
  trial's identity and its final output, :mod:`tuner._output`).

Both import their dependency at their top: import them where it is used, lazily. This
module imports neither.

At run time a missing name is :class:`IncompatibleDependency`, one line naming the
dependency and its version (:func:`incompatible`), except where tuner falls back: the GP
believer behaves as Optuna's plain ``GPSampler`` and logs one warning.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from tuner.exceptions import IncompatibleDependency

__all__ = ["CHECKS", "IncompatibleDependency", "check", "check_all", "incompatible"]


def version(dependency: str) -> str:
    """The installed version of a distribution, or ``?`` if it cannot be read."""
    try:
        return metadata.version(dependency)
    except metadata.PackageNotFoundError:
        return "?"


def incompatible(dependency: str, what: str) -> IncompatibleDependency:
    """The one-line error for `what` missing from the installed `dependency`."""
    return IncompatibleDependency(
        f"{dependency} {version(dependency)} differs from what tuner uses ({what}); install "
        f"a {dependency} version tuner supports (see its pyproject.toml) or upgrade tuner"
    )


# name -> "module:function": a function () -> None if the private name is there with the
# shape tuner reads, else what is missing (one line).
CHECKS: dict[str, str] = {
    "optuna constraints key": "tuner._compat.optuna:check_constraints_key",
    "optuna hypervolume": "tuner._compat.optuna:check_hypervolume",
    "optuna GP internals": "tuner._compat.optuna:check_gp_internals",
    "optuna fitted GPRegressor state": "tuner._compat.optuna:check_gp_regressor_state",
    "optuna genetic samplers pickle": "tuner._compat.optuna:check_genetic_samplers_pickle",
    "optuna in-memory storage logger": "tuner._compat.optuna:check_in_memory_logger",
    "optuna QMC sample count": "tuner._compat.optuna:check_qmc_sample_id",
    "ray single-machine switch": "tuner._compat.ray:check_single_machine_switch",
    "ray internal key-value store": "tuner._compat.ray:check_internal_kv",
}


def check(name: str) -> str | None:
    """Run one check of :data:`CHECKS` (imports its dependency)."""
    module, _, attr = CHECKS[name].partition(":")
    result: str | None = getattr(importlib.import_module(module), attr)()
    return result


def check_all() -> dict[str, str | None]:
    """Every check's result: None where the private name is there as tuner reads it."""
    return {name: check(name) for name in CHECKS}
