"""The one place Ray is initialised, and the process set up for a run.

Ray Tune reads some of its switches when it is imported, so :func:`ensure_ray` sets
them before anything imports Ray; modules that import Ray Tune at their top
(tuner.run._callbacks, tuner.search._searchers) are imported after it by the runner.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
    # SIGINT/SIGTERM are tuner's (tuner.run._retry.SignalStop), and a trial that does not
    # stop when asked (a hung objective) is killed after 10 s, not 600. Not less: Ray
    # Tune kills no actor before 10 s anyway, and below 10 its controller spends each
    # step from then on waiting up to 1 s for the stopping actors, starting no trial
    # (12 of 26 s of a 48-trial study on a 3-node cluster; bench/RESULTS.md).
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "TUNE_FORCE_TRIAL_CLEANUP_S": "10",
}


def configure_env() -> None:
    """Set Ray Tune's environment switches before it is imported."""
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)


def quiet_optuna() -> None:
    """Optuna logs every trial it is told about; tuner records them instead."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def ensure_ray(
    address: str | None = None, *, verbose: bool = False, working_dir: str | None = None
) -> None:
    """Start a local Ray (address None) or connect to a cluster, once per process.

    Also sets Ray Tune's environment switches and Optuna's log level for the run.

    Args:
        address: None (or "local") for a new local Ray; "auto", "HOST:PORT" or
            "ray://HOST:PORT" for an existing cluster.
        verbose: let Ray's logs and the trials' output through.
        working_dir: the spec's folder; on a cluster it travels to every node (Ray's
            runtime_env working_dir, less :data:`SHIP_EXCLUDES`), so a python trainer's
            module beside the spec is found where trials run.

    Raises:
        SpecError: the folder to ship is larger than :data:`SHIP_LIMIT_BYTES`.
        ClusterError: Ray cannot be started, or the cluster cannot be reached or refuses the token.
    """
    configure_env()
    quiet_optuna()
    import ray

    if ray.is_initialized():
        return
    from tuner.exceptions import ClusterError

    local = _starts_local(address)
    joining = os.environ.get("RAY_ADDRESS") if address in (None, "auto") else address
    if local or _on_loopback(joining):
        _loopback_only()
    if not local and joining:
        _check_reachable(joining)  # nothing there: say so now, not after Ray's retries
    # A driver running as a Ray job (tuner submit) has its folder shipped already.
    ship = not local and address and not os.environ.get(SHIPPED_ENV)
    runtime_env = shipped(working_dir) if working_dir and ship else None
    # Joining: Ray's C++ core logs each failed connection attempt to fd 2. Not when
    # starting a local Ray, whose processes would inherit the capture.
    with _captured_stderr(enabled=not local) as captured:
        try:
            ray.init(
                # "local" always starts a new Ray: without it, ray.init joins the cluster
                # that `ray start` last started on this machine, dead or alive.
                address="local" if local else address,
                runtime_env=runtime_env,
                include_dashboard=False,
                log_to_driver=verbose,
                logging_level=logging.INFO if verbose else logging.ERROR,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClusterError(_why(joining, e, captured())) from None
    if verbose:
        sys.stderr.write(captured())


@contextlib.contextmanager
def _captured_stderr(enabled: bool = True) -> Iterator[Callable[[], str]]:
    """Hold what Ray writes to file descriptor 2 while it starts (its C++ core retries
    and logs there); yields a function that returns it."""
    if not enabled:
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: _read(sink)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _read(sink: Any) -> str:
    sink.flush()
    sink.seek(0)
    return sink.read().decode(errors="replace")


# What never travels with a study's folder: version control, environments, caches,
# databases and data files (the driver reads csv/parquet and shares the rows itself).
SHIP_EXCLUDES = [
    ".git", ".hg", ".venv", "venv", "env", "__pycache__", "*.pyc", ".pytest_cache",
    ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules", "test-artifacts",
    "*.db", "*.db-wal", "*.db-shm", "*.sqlite", "*.sqlite3", "*.csv", "*.csv.gz",
    "*.parquet", "*.npy", "*.npz", "*.pkl", "*.pt", "*.ckpt",
]  # fmt: skip
SHIP_LIMIT_BYTES = 100 * 2**20  # Ray refuses a working_dir over 500 MiB; far less is sane
SHIPPED_ENV = "TUNER_SHIPPED"  # set in trials whose spec folder came through Ray


def shipped(folder: str) -> dict[str, object]:
    """Ray's runtime_env that ships `folder` to every node, checked for size first.

    Raises:
        SpecError: the folder holds more than :data:`SHIP_LIMIT_BYTES` to ship.
    """
    from tuner.exceptions import SpecError

    size = _shipped_size(Path(folder))
    if size > SHIP_LIMIT_BYTES:
        raise SpecError(
            f"the spec's folder {folder} holds {size / 2**20:.0f} MiB to send to the cluster "
            f"(at most {SHIP_LIMIT_BYTES // 2**20} MiB): move large files out of it, or keep "
            "the spec in a folder of its own with its python modules",
            ["resources", "address"],
        )
    return {"working_dir": folder, "excludes": SHIP_EXCLUDES, "env_vars": {SHIPPED_ENV: "1"}}


def _shipped_size(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _excluded(d)]
        for name in filenames:
            if not _excluded(name):
                with contextlib.suppress(OSError):
                    total += (Path(dirpath) / name).stat().st_size
        if total > SHIP_LIMIT_BYTES:
            break
    return total


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SHIP_EXCLUDES)


def _why(address: str | None, error: Exception, logged: str = "") -> str:
    """One line on why Ray could not be started or joined, and what to do."""
    text = " ".join(str(error).split())
    everything = " ".join([text, str(error.__cause__ or ""), logged]).lower()
    if "invalidauthtoken" in everything or "unauthenticated" in everything:
        return (
            f"the Ray cluster at {address} refused this driver's authentication token: set "
            "RAY_AUTH_TOKEN (or the file ~/.ray/auth_token) to the cluster's token, and "
            "RAY_AUTH_MODE=token"
        )
    if address is None:
        return f"cannot start a local Ray: {text[:300]}"
    return (
        f"cannot reach the Ray cluster at {address} ({text[:200]}); check the address "
        "(HOST:6379, ray://HOST:10001 or auto) and that the head node is up"
    )


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, where ray.init would wait minutes: a HOST:PORT or
    ray://HOST:PORT address where nothing listens.

    Raises:
        ClusterError: nothing accepts a connection at the address.
    """
    from tuner.exceptions import ClusterError

    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # Ray's own parsing reports it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(
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
    from tuner._compat.ray import single_machine

    single_machine()


def check_fits(per_trial: dict[str, float]) -> None:
    """Check that at least one live node can hold one trial's resources.

    Args:
        per_trial: Ray Tune's names: ``{"cpu": 1, "gpu": 1, "a100": 1}``.

    Raises:
        SpecError: no node offers that much, naming what each node offers.
    """
    import ray

    from tuner.exceptions import SpecError

    want = {("CPU" if k == "cpu" else "GPU" if k == "gpu" else k): v for k, v in per_trial.items()}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if any(all(n["Resources"].get(k, 0) >= v for k, v in want.items() if v) for n in nodes):
        return
    offers = "; ".join(
        f"{n.get('NodeManagerAddress', '?')}: "
        + ", ".join(f"{k} {n['Resources'].get(k, 0):g}" for k in want)
        for n in nodes
    )
    asked = ", ".join(f"{k} {v:g}" for k, v in want.items() if v)
    raise SpecError(
        f"no node of the cluster can hold one trial ({asked}); the nodes offer: {offers}. "
        "Lower resources.cpus_per_trial, gpus_per_trial or custom, or add nodes that have them",
        ["resources"],
    )
