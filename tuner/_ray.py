"""The one place Ray is initialised."""

from __future__ import annotations

import logging
import os

# Ray Tune's per-trial CSV/JSON/TensorBoard loggers cost time per result and write
# files nobody reads here: every result goes to tuner's database instead.
_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    "RAY_AIR_NEW_OUTPUT": "0",  # the legacy reporter is silent at verbose=0
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
}


def configure_env() -> None:
    """Set Ray Tune's environment switches before it is imported."""
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)


def ensure_ray(address: str | None = None, *, verbose: bool = False) -> None:
    """Start a local Ray (address None) or connect to a cluster, once per process.

    Raises:
        TunerError: the cluster cannot be reached.
    """
    configure_env()
    import ray

    if ray.is_initialized():
        return
    from tuner.exceptions import TunerError

    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray"
        raise TunerError(f"cannot start or reach {where}: {e}".splitlines()[0]) from None
