"""`kind: xgboost` with `num_workers` > 1: data-parallel boosting through Ray Train.

Where the time of a Ray Train job goes, measured on this 2-core machine (Ray 2.60,
Train V2): a new controller actor and a new worker group per job (9-19 s, new processes
that import Ray Train and xgboost), workers blocking on every ``ray.train.report`` until
the controller's next poll (2 s a round at the default
``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``), and building the DMatrix from the data again in
every trial. One Ray Train job per trial therefore costs tens of seconds before the
first boosting round. tuner pays those costs once per study instead:

- A *worker group* is one long-lived Ray Train job (:class:`ray.train.xgboost.
  XGBoostTrainer`) whose `num_workers` workers each hold one shard of the training and
  validation data, joined by xgboost's collective (Ray Train's XGBoostConfig sets it
  up). The workers serve trials one after another: they take the next trial's config
  from the :class:`_Dispatcher` actor, train one model on all the data together, and
  rank 0 sends the metrics of every round back. The QuantileDMatrix is built once per
  worker and reused by every trial with the same `max_bin`.
- Each Ray Tune trial is a relay: it submits its config, turns each round's metrics
  into a report (so schedulers cut after any round), and a STOP from the scheduler
  becomes a cancel that all workers act on at the same round (rank 0 broadcasts it).
- Checkpoints and models (with an artifacts store): rank 0 sends its booster, in
  xgboost's format, with the metrics of every ``checkpoint_every``-th round and at the
  end; the relay, in the trial's process, stores it as the report's checkpoint and as
  the trial's model (:mod:`tuner.trainers._models`). An attempt that starts from a
  checkpoint hands its booster to the workers with its config, and they boost on from
  it. A trial cut by its plateau keeps its last checkpoint as its model.
- There are as many worker groups as fit in the cluster (CPUs / (workers x CPUs per
  worker)), at most `max_concurrent`, and Ray Tune runs that many trials at once. A
  worker group that dies (a node lost) fails the trial it was running and is started
  again for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuner import _report
from tuner.data import Dataset
from tuner.exceptions import SpecError, TunerError
from tuner.spec import StudySpec, XGBoostTrainer
from tuner.trainers._models import XGBOOST_FILE, report_checkpoint, save_model
from tuner.trainers._prepared import Prepared
from tuner.trainers._xgboost_common import (
    base_params,
    gpu_assigned,
    matrices,
    matrix_key,
    round_metrics,
    train,
)

log = logging.getLogger(__name__)

# Ray Train settings that cut its per-job and per-report costs (see the module doc).
TRAIN_ENV = {
    # Workers wait in ray.train.report until the controller polls: 2 s by default.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.05",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
    "RAY_TRAIN_ENABLE_CONTROLLER_STRUCTURED_LOGGING": "0",
    "RAY_TRAIN_ENABLE_WORKER_STRUCTURED_LOGGING": "0",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
}
# `num_workers: auto`: one worker until the training data passes this size, then one
# more per this much (bench/RESULTS.md: below it, splitting only adds cost).
AUTO_BYTES_PER_WORKER = 1 << 30


def auto_workers(data_bytes: int, max_workers: int) -> int:
    """Workers for `num_workers: auto`: 1 per AUTO_BYTES_PER_WORKER of data, at least 1."""
    return max(1, min(max_workers, math.ceil(data_bytes / AUTO_BYTES_PER_WORKER)))


@dataclass
class _Job:
    config: dict[str, Any]
    group: int | None = None
    # (round, metrics, rank 0's booster in xgboost's format or None), not yet polled
    rows: list[tuple[int, dict[str, float], bytes | None]] = field(default_factory=list)
    model: bytes | None = None  # the final booster, once done (with an artifacts store)
    state: str = "pending"  # pending | running | done | failed
    error: str | None = None
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class _Dispatcher:
    """Hands trials to worker groups and their results back to the relays (an actor)."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._pending: list[str] = []
        self._assigned: dict[tuple[int, int], list[str]] = {}  # (group, gen) -> job ids
        self._cursor: dict[tuple[int, int, int], int] = {}  # (group, gen, rank) -> index
        self._live_gen: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._closed = False
        self._workers: dict[tuple[int, int, int], dict[str, Any]] = {}

    # -- relays -------------------------------------------------------------------
    async def submit(self, job_id: str, config: dict[str, Any]) -> None:
        self._jobs[job_id] = _Job(config)
        self._pending.append(job_id)
        self._wake.set()

    async def poll(self, job_id: str, after: int, timeout: float = 5.0) -> tuple:
        """The rounds after `after` (round, metrics, booster), the job's state, its
        error, and its final booster once done; rounds up to `after` are dropped (the
        relay asks only for later ones)."""
        job = self._jobs[job_id]
        job.rows = [row for row in job.rows if row[0] > after]
        if not job.rows and job.state in ("pending", "running"):
            job.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.changed.wait(), timeout)
        rows = list(job.rows)
        return rows, job.state, job.error, job.model

    async def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.cancelled = True
        if job.state == "pending":
            self._pending.remove(job_id)
            job.state = "failed"
            job.error = "cancelled before it started"
        if job.state in ("done", "failed"):
            del self._jobs[job_id]

    # -- workers ------------------------------------------------------------------
    async def register(self, group: int, gen: int, rank: int, info: dict[str, Any]) -> None:
        """A worker's process, node and the rows it holds (shown by `workers`)."""
        self._workers[(group, gen, rank)] = info

    async def workers(self) -> list[dict[str, Any]]:
        return [
            {"group": g, "gen": gen, "rank": r, **info}
            for (g, gen, r), info in sorted(self._workers.items())
        ]

    async def next_job(self, group: int, gen: int, rank: int) -> tuple | None:
        """The next trial for this worker group; every rank gets the same sequence."""
        self._live_gen[group] = gen
        key = (group, gen)
        assigned = self._assigned.setdefault(key, [])
        i = self._cursor.get((group, gen, rank), 0)
        while i >= len(assigned):
            if self._closed:
                return None
            if self._pending:
                job_id = self._pending.pop(0)
                job = self._jobs[job_id]
                job.group, job.state = group, "running"
                job.changed.set()
                assigned.append(job_id)
                break
            self._wake.clear()
            await self._wake.wait()
        self._cursor[(group, gen, rank)] = i + 1
        job_id = assigned[i]
        known = self._jobs.get(job_id)
        return job_id, (known.config if known is not None else {})

    async def report(
        self, job_id: str, round_: int, metrics: dict[str, float], booster: bytes | None = None
    ) -> bool:
        """Rank 0's metrics after a round (and its booster, a checkpoint's); True: stop
        this trial now."""
        job = self._jobs.get(job_id)
        if job is None:
            return True
        job.rows.append((round_, metrics, booster))
        job.changed.set()
        return job.cancelled

    async def finish(self, job_id: str, error: str | None, model: bytes | None = None) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.state, job.error = ("failed", error) if error else ("done", None)
        job.model = None if error else model
        job.changed.set()
        if job.cancelled:
            del self._jobs[job_id]

    async def group_failed(self, group: int, gen: int, error: str) -> None:
        """A worker group died: fail the trial it was running."""
        for job_id in self._assigned.get((group, gen), []):
            job = self._jobs.get(job_id)
            if job is not None and job.state == "running":
                job.state, job.error = "failed", f"{GROUP_DIED}: {error}"
                job.changed.set()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()


def _serve(cfg: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: train every trial the dispatcher hands this group."""
    import ray
    from ray import train as ray_train

    ctx = ray_train.get_context()
    rank = ctx.get_world_rank()
    dispatcher, group, gen = cfg["dispatcher"], cfg["group"], cfg["gen"]
    X_tr, y_tr, X_va, y_va = ray.get(list(cfg["shards"][rank]))  # zero-copy views
    nthread = cfg["nthread"]
    start, end = cfg["ranges"][rank]
    info = {
        "pid": os.getpid(),
        "node": ray.util.get_node_ip_address(),
        "world_size": ctx.get_world_size(),
        "row_start": start,
        "row_end": end,
        "rows": len(X_tr),
        "checksum": float(X_tr.sum(dtype="float64")),
    }
    ray.get(dispatcher.register.remote(group, gen, rank, info))
    world = ctx.get_world_size()
    matrices_: dict[Any, tuple[Any, Any]] = {}

    while True:
        job = ray.get(dispatcher.next_job.remote(group, gen, rank))
        if job is None:
            return
        job_id, config = job
        config = dict(config)
        every = config.pop(EVERY_KEY, None)  # None: no artifacts store, nothing is saved
        start_raw = config.pop(START_KEY, None)
        params = {**cfg["params"], **config, "nthread": nthread}
        if gpu_assigned():
            params.setdefault("device", "cuda")
        rounds = int(params.pop("num_boost_round", cfg["max_rounds"]))
        model = None
        try:
            key = matrix_key(params)
            if key not in matrices_:
                matrices_.clear()
                matrices_[key] = matrices(X_tr, y_tr, X_va, y_va, params, nthread)
            dtrain, dvalid = matrices_[key]
            start = None if start_raw is None else _booster(start_raw)
            done = 0 if start is None else start.num_boosted_rounds()
            relay = _Relay(dispatcher, job_id, rank, world, done, every, rounds)
            booster = train(params, dtrain, dvalid, rounds - done, relay, start)
            if rank == 0 and every is not None:
                model = bytes(booster.save_raw("ubj"))
            error = None
        except Exception as e:  # a bad config fails its trial, not the group
            if _collective_broken(e):
                raise  # a peer is gone: end this group; its launcher starts a new one
            error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        if rank == 0:
            ray.get(dispatcher.finish.remote(job_id, error, model))


# A job's config keys for its relay's checkpoint plan, which the workers take out: the
# rounds between checkpoints (absent: no artifacts store), and the booster to start from.
EVERY_KEY = "_tuner_checkpoint_every"
START_KEY = "_tuner_start_booster"


def _booster(raw: bytes) -> Any:
    import xgboost as xgb

    return xgb.Booster(model_file=bytearray(raw))


def _collective_broken(e: Exception) -> bool:
    """Whether xgboost failed in its collective (a worker died), not on the config."""
    text = str(e)
    return type(e).__name__ == "XGBoostError" and any(
        word in text for word in ("src/collective", "Socket", "socket", "Connection")
    )


class _Relay:
    """xgboost callback: rank 0 reports each round (after the `done` rounds of the
    booster it started from), with its booster every `every` rounds and at the last
    (`total`); every rank stops on the same one."""

    def __new__(
        cls,
        dispatcher: Any,
        job_id: str,
        rank: int,
        world: int,
        done: int = 0,
        every: int | None = None,
        total: int = 0,
    ) -> Any:
        import ray
        import xgboost as xgb
        from xgboost import collective

        class Relay(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
                stop = None
                if rank == 0:
                    round_ = done + epoch + 1
                    metrics = round_metrics(evals_log)
                    metrics["rounds"] = round_
                    metrics["workers"] = world
                    raw = None
                    # The last round's too: a scheduler that stops the trial at its
                    # budget ends it first, and its last checkpoint is then its model.
                    if every is not None and (round_ % every == 0 or round_ == total):
                        raw = bytes(model.save_raw("ubj"))
                    stop = ray.get(dispatcher.report.remote(job_id, round_, metrics, raw))
                return bool(collective.broadcast(stop, 0))

        return Relay()


class WorkerGroups:
    """The study's Ray Train worker groups and their dispatcher (lives in the driver)."""

    def __init__(
        self,
        data: Dataset | None,
        num_workers: int,
        cpus_per_worker: float,
        params: dict[str, Any],
        max_rounds: int,
        max_concurrent: int,
        fit_to_cluster: bool = False,
        worker_resources: dict[str, float] | None = None,
    ) -> None:
        self.data = data
        # Each worker's resources beyond its CPUs, Ray's names: {"GPU": 1, "a100": 1}.
        self.worker_resources = dict(worker_resources or {})
        self.fit_to_cluster = fit_to_cluster  # num_workers: auto
        self.num_workers = num_workers
        self.cpus_per_worker = cpus_per_worker
        self.params = params
        self.max_rounds = max_rounds
        self.max_concurrent = max_concurrent
        self.groups = 0
        self.dispatcher: Any = None
        self._launchers: list[Any] = []
        self._actors: list[Any] = []
        # Trials find the dispatcher by name: it starts after their function is built.
        self.dispatcher_name = f"tuner-dispatcher-{uuid.uuid4().hex[:12]}"
        self._workdir = tempfile.mkdtemp(prefix="tuner-train-")

    def start(self) -> int:
        """Start the worker groups; returns how many run at once."""
        import ray

        cluster_cpus = ray.cluster_resources().get("CPU", 0)
        if self.fit_to_cluster:
            most = max(1, int(cluster_cpus // self.cpus_per_worker))
            self.num_workers = min(self.num_workers, most)
        per_group = self.num_workers * self.cpus_per_worker
        fit = int(cluster_cpus // per_group)
        totals = ray.cluster_resources()
        for name, amount in self.worker_resources.items():
            have = totals.get(name, 0)
            if have < amount * self.num_workers:
                raise SpecError(
                    f"{self.num_workers} workers x {amount:g} {name} need "
                    f"{amount * self.num_workers:g} {name}; the cluster has {have:g}: lower "
                    "trainer.num_workers or the resources each worker asks for",
                    ["resources"],
                )
            fit = min(fit, int(have // (amount * self.num_workers)))
        if fit < 1:
            raise SpecError(
                f"{self.num_workers} workers x {self.cpus_per_worker:g} CPUs need "
                f"{per_group:g} CPUs; the cluster has {cluster_cpus:g}: lower "
                "trainer.num_workers or resources.cpus_per_trial, or use num_workers: auto",
                ["trainer", "num_workers"],
            )
        self.groups = min(fit, self.max_concurrent)
        self.dispatcher = (
            ray.remote(_Dispatcher).options(num_cpus=0, name=self.dispatcher_name).remote()
        )
        if self.data is None:
            raise RuntimeError("WorkerGroups.start() runs once")
        shards = _put_shards(self.data, self.num_workers)
        rows = len(self.data.X_train)
        self.data = None  # the object store holds the shards now: drop the driver's copy
        # Through the launcher's environment, which Ray Train passes on to its controller
        # and workers; the user's own process is left alone.
        env = {k: os.environ.get(k, v) for k, v in TRAIN_ENV.items()}
        launcher: Any = ray.remote(_Launcher).options(
            num_cpus=0, max_restarts=0, runtime_env={"env_vars": env}
        )
        for g in range(self.groups):
            actor: Any = launcher.remote()
            self._actors.append(actor)
            self._launchers.append(
                actor.run.remote(
                    self.dispatcher,
                    g,
                    shards,
                    rows,
                    self.num_workers,
                    {"CPU": self.cpus_per_worker, **self.worker_resources},
                    self.params,
                    self.max_rounds,
                    os.path.join(self._workdir, f"group-{g}"),
                )
            )
        return self.groups

    def close(self, timeout_s: float = 30.0) -> None:
        import shutil

        import ray

        if self.dispatcher is None:
            return
        try:
            ray.get(self.dispatcher.close.remote(), timeout=5)
            # Workers finish their trial and return; their Ray Train jobs end.
            ray.wait(self._launchers, num_returns=len(self._launchers), timeout=timeout_s)
        except Exception:
            log.debug("closing worker groups", exc_info=True)
        for actor in self._actors:
            ray.kill(actor)  # a group that did not end in time goes with its launcher
        ray.kill(self.dispatcher)
        self.dispatcher = None
        shutil.rmtree(self._workdir, ignore_errors=True)


def shard_ranges(rows: int, n: int) -> list[tuple[int, int]]:
    """Contiguous, disjoint row ranges, one per worker, that cover all rows."""
    edges = [rows * i // n for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def _put_shards(data: Dataset, n: int) -> list[tuple[Any, Any, Any, Any]]:
    """Train and validation row blocks, one set per worker, put in the object store once."""
    import ray

    train, valid = shard_ranges(len(data.X_train), n), shard_ranges(len(data.X_valid), n)
    return [
        (
            ray.put(data.X_train[a:b]),
            ray.put(data.y_train[a:b]),
            ray.put(data.X_valid[c:d]),
            ray.put(data.y_valid[c:d]),
        )
        for (a, b), (c, d) in zip(train, valid, strict=True)
    ]


class _Launcher:
    """An actor that runs one worker group's Ray Train job, again after a failure."""

    def run(self, *args: Any) -> None:
        _launch_group(*args)


def _launch_group(
    dispatcher: Any,
    group: int,
    shards: list,
    rows: int,
    num_workers: int,
    per_worker: dict[str, float],
    params: dict[str, Any],
    max_rounds: int,
    storage_path: str,
) -> None:
    """Run one worker group's Ray Train job until the dispatcher closes."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.xgboost import XGBoostTrainer

    gen = 0
    while True:
        trainer = XGBoostTrainer(
            _serve,
            train_loop_config={
                "dispatcher": dispatcher,
                "group": group,
                "gen": gen,
                "shards": shards,
                "ranges": shard_ranges(rows, num_workers),
                "params": params,
                "max_rounds": max_rounds,
                "nthread": max(1, math.floor(per_worker["CPU"])),
            },
            scaling_config=ScalingConfig(
                num_workers=num_workers,
                resources_per_worker=per_worker,
                use_gpu=per_worker.get("GPU", 0) > 0,  # Ray Train insists on the flag
            ),
            run_config=RunConfig(
                name=f"group-{group}-{gen}",
                storage_path=storage_path,
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        try:
            trainer.fit()
            return  # the dispatcher closed: the study is over
        except Exception as e:
            first = _cause(e)
            ray.get(dispatcher.group_failed.remote(group, gen, first))
            gen += 1
            time.sleep(1.0)


GROUP_DIED = "the trial's worker group failed"


def _cause(e: BaseException) -> str:
    """One line that says why a worker group failed: the first failed worker's own
    error where Ray Train gives one (its message alone is "Training failed due to worker
    errors:"), else the exception's first line."""
    failures = getattr(e, "worker_failures", None)
    if failures:
        rank, error = min(failures.items(), key=lambda kv: kv[0])
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        # A remote traceback ends with the exception itself.
        return f"worker {rank}: {lines[-1] if lines else type(error).__name__}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def relay(
    dispatcher_name: str, rules: _report.TrialRules, checkpoint_every: int = 10
) -> Callable[[dict[str, Any]], None]:
    """The Ray Tune trial function that hands its config to a worker group (a plateau
    of its metric ends it, and cancels the job), and stores the boosters rank 0 sends
    (see the module)."""

    def tuner_xgboost_dp_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        dispatcher = ray.get_actor(dispatcher_name)
        job_id = tune.get_context().get_trial_id() or uuid.uuid4().hex

        def follow(_: _report.TrialContext) -> None:
            job = dict(config)
            if _report.saves_artifacts():
                job[EVERY_KEY] = checkpoint_every
                folder = _report.get_checkpoint()
                if folder is not None:
                    job[START_KEY] = (folder / XGBOOST_FILE).read_bytes()
            ray.get(dispatcher.submit.remote(job_id, job))
            after = 0
            try:
                while True:
                    rows, state, error, model = ray.get(dispatcher.poll.remote(job_id, after))
                    for round_, metrics, raw in rows:
                        if raw is None:
                            _report.report(step=round_, **metrics)
                        else:
                            report_checkpoint(functools.partial(_write, raw), round_, **metrics)
                        after = round_
                    if state == "done":
                        if model is not None:
                            save_model(functools.partial(_write, model), after)
                        return
                    if state == "failed" and (error or "").startswith(GROUP_DIED):
                        from tuner.run._retry import WorkerDied

                        raise WorkerDied(error)  # retried (limits.max_retries)
                    if state == "failed":
                        raise TunerError(error or "the trial failed in its worker group")
            finally:
                dispatcher.cancel.remote(job_id)

        _report.run_trial(rules, follow)

    return tuner_xgboost_dp_trial


def _write(raw: bytes, folder: Any) -> None:
    (folder / XGBOOST_FILE).write_bytes(raw)


def prepare_data_parallel(
    spec: StudySpec, trainer: XGBoostTrainer, data: Dataset, workers: int, auto: bool
) -> Prepared:
    """xgboost trials on long-lived Ray Train worker groups (runs in the driver)."""
    groups = WorkerGroups(
        data,
        workers,
        spec.resources.cpus_per_trial,
        base_params(trainer, data.n_classes),
        trainer.max_rounds,
        spec.search.max_concurrent,
        fit_to_cluster=auto,
        worker_resources=_ray_names(spec.resources.per_trial()),
    )
    return Prepared(
        relay(groups.dispatcher_name, _report.rules(spec), trainer.checkpoint_every),
        data_bytes=data.nbytes,
        # The relay only waits on its worker group, which holds the CPUs.
        resources={"cpu": 0, "memory": 1},
        # As many trials in flight as worker groups fit in the cluster.
        start=groups.start,
        cleanup=groups.close,
    )


def _ray_names(per_trial: dict[str, float]) -> dict[str, float]:
    """A worker's resources beyond CPUs, as Ray Train names them (GPU, custom)."""
    return {("GPU" if k == "gpu" else k): v for k, v in per_trial.items() if k != "cpu"}
