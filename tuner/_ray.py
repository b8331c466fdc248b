"""The one place Ray is initialised, and the process set up for a run.

Ray Tune reads some of its switches when it is imported, so :func:`ensure_ray` sets
them before anything imports Ray; modules that import Ray Tune at their top
(tuner._callbacks, tuner.search._searchers) are imported after it by the runner.
"""

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
    # tuner resumes from its database, never from Ray Tune's experiment state: save
    # that state once at the end, not every few seconds while trials run.
    "TUNE_GLOBAL_CHECKPOINT_S": "1000000000",
    # SIGINT/SIGTERM are tuner's (tuner._faults.SignalStop), and a trial that does not
    # stop when asked (a hung objective) is killed after 3 s, not 600.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "TUNE_FORCE_TRIAL_CLEANUP_S": "3",
}


def configure_env() -> None:
    """Set Ray Tune's environment switches before it is imported."""
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)


def quiet_optuna() -> None:
    """Optuna logs every trial it is told about; tuner records them instead."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def ensure_ray(address: str | None = None, *, verbose: bool = False) -> None:
    """Start a local Ray (address None) or connect to a cluster, once per process.

    Also sets Ray Tune's environment switches and Optuna's log level for the run.

    Raises:
        TunerError: the cluster cannot be reached.
    """
    configure_env()
    quiet_optuna()
    import ray

    if ray.is_initialized():
        return
    from tuner.exceptions import TunerError

    local = _starts_local(address)
    joining = os.environ.get("RAY_ADDRESS") if address in (None, "auto") else address
    if local or _on_loopback(joining):
        _loopback_only()
    if not local:
        _check_reachable(joining)
    try:
        ray.init(
            # "local" always starts a new Ray: without it, ray.init joins the cluster
            # that `ray start` last started on this machine, dead or alive.
            address="local" if local else address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray"
        raise TunerError(f"cannot start or reach {where}: {e}".splitlines()[0]) from None


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, where ray.init would wait minutes: a HOST:PORT or
    ray://HOST:PORT address where nothing listens.

    Raises:
        TunerError: nothing accepts a connection at the address.
    """
    import socket

    from tuner.exceptions import TunerError

    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # Ray's own parsing reports it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise TunerError(
            f"cannot reach the Ray cluster at {address}: {e.strerror or e}; start it with "
            "`ray start --head` or fix resources.address / --address"
        ) from None


def _starts_local(address: str | None) -> bool:
    """Whether the study gets a new local Ray rather than joining a cluster (address
    null, or "local"; RAY_ADDRESS, set inside a Ray job, names the job's cluster)."""
    return address == "local" or (address is None and not os.environ.get("RAY_ADDRESS"))


def _on_loopback(address: str | None) -> bool:
    """Whether `address` names a cluster on this machine's loopback (127.x, localhost)."""
    if not address or "://" in address:
        return False
    host = address.rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _loopback_only() -> None:
    """Keep Ray on 127.0.0.1: a local Ray, or a driver joining a cluster on loopback.

    Ray maps a loopback node address to the machine's network address (so that other
    machines could reach it) and listens or connects there. Ray's switch for
    single-machine clusters keeps it on loopback: read by this process's Ray now, and
    by the Ray processes a local Ray starts through their environment.
    """
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
