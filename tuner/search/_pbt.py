"""Population Based Training as lineage (``search.algorithm: pbt`` or ``pb2``).

Ray Tune's own PBT changes a running trial's parameters in place and refuses any
searcher. Here, as in Syne Tune, every trial keeps fixed parameters: `population`
trials start with parameters drawn at random; every `perturbation_interval` steps a
trial is compared with the others' latest values, and one in the bottom
`quantile_fraction` is cut (it ends as pruned). Its place goes to a new trial that
starts from the checkpoint of a trial in the top `quantile_fraction` (the donor, its
``parent``) with the donor's parameters mutated (explore):

- pbt: each parameter, with `resample_probability` drawn afresh from its range, else
  moved 0.8x or 1.2x (clipped into its range; a categorical one, or one with explicit
  `values`, moves to a neighbouring choice);
- pb2 (Parker-Holder et al. 2020): numeric parameters chosen by a GP bandit, the upper
  confidence bound of a Gaussian process fitted to how much each configuration improved
  the metric per step over its last interval, at the current step; categorical ones are
  the donor's.

:class:`Population` holds what the searcher and the scheduler share. The driver plugs
in where checkpoints lie (:attr:`Population.latest`), keeps a donor's checkpoint until
its child has started (:attr:`Population.pin`), and reads each child's donor and
checkpoint when Ray starts it (:meth:`Population.take`).
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from tuner._report import STEP_KEY
from tuner.search._base import TunerSearcher
from tuner.spec import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    from tuner._checkpoint import Restore
    from tuner.search._searchers import PastTrial
    from tuner.spec import StudySpec

__all__ = ["Child", "PBTScheduler", "PBTSearcher", "Population", "pb2", "pbt"]

Param = FloatParam | IntParam | CategoricalParam


@dataclass(frozen=True)
class Child:
    """A trial to start in a cut trial's place: its parameters, its donor's Ray trial
    id, and the donor's checkpoint it starts from."""

    config: dict[str, Any]
    donor: str
    restore: Restore
    parent: int | None  # the donor's number


@dataclass
class _Member:
    config: dict[str, Any]
    score: float | None = None  # its latest value, signed so that larger is better
    step: int | None = None
    compared_at: int | None = None  # the step it was last compared at
    score_then: float | None = None  # its score then (pb2's improvement)
    scores: dict[int, float] = field(default_factory=dict)  # step -> score
    due: int | None = None  # the step of its next comparison
    cut: bool = False  # found in the bottom: cut at its next report
    donors: list[str] = field(default_factory=list)  # the top when it was found there

    def score_at(self, step: int) -> float | None:
        """Its score at `step`, or at the last step before it that it reported."""
        if step in self.scores:
            return self.scores[step]
        before = [s for s in self.scores if s <= step]
        return self.scores[max(before)] if before else None


@dataclass
class Population:
    """What the searcher, the scheduler and the driver share (see the module)."""

    size: int
    latest: Callable[[str], Restore | None] = field(default=lambda trial_id: None)
    pin: Callable[[str], None] = field(default=lambda uri: None)
    number: Callable[[str], int | None] = field(default=lambda trial_id: None)
    fail: Callable[[str], None] = field(default=lambda message: None)
    members: dict[str, _Member] = field(default_factory=dict)  # live trials
    children: deque[Child] = field(default_factory=deque)  # waiting for a trial id
    started: dict[str, Child] = field(default_factory=dict)  # Ray trial id -> child
    error: str | None = None

    HOOKS = ("latest", "pin", "number", "fail")

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the searcher and scheduler; the driver's hooks (bound to its
        # recorder and ledger) stay behind, and a copy gets the defaults.
        return {k: v for k, v in self.__dict__.items() if k not in self.HOOKS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fresh = Population(int(state.get("size", 2)))
        self.__dict__.update({k: getattr(fresh, k) for k in self.HOOKS})
        self.__dict__.update(state)

    def take(self, trial_id: str) -> Child | None:
        """Ray starts trial `trial_id`: the child it is, once (None: a first one)."""
        return self.started.pop(trial_id, None)


class PBTSearcher(TunerSearcher):
    """The population's first members at random, then the children the scheduler
    queues; finished once no member runs and no child waits."""

    scheduler: PBTScheduler | None = None  # the one made with it (see pbt, pb2)

    def __init__(self, spec: StudySpec, population: Population, explore: Explore) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        self.population = population
        self.explore = explore
        self._first = deque(spec.search.initial_points)
        self._sampled = 0
        self._seen: set[str] = set()

    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]
        pop = self.population
        if pop.error is not None:
            return Searcher.FINISHED
        if self._sampled < pop.size:
            self._sampled += 1
            config = dict(self._first.popleft()) if self._first else self.explore.sample()
            pop.members[trial_id] = _Member(config)
            self._seen.add(trial_id)
            return dict(config)
        if pop.children:
            child = pop.children.popleft()
            pop.started[trial_id] = child
            pop.members[trial_id] = _Member(dict(child.config))
            self._seen.add(trial_id)
            return dict(child.config)
        if not pop.members:
            return Searcher.FINISHED
        return None  # ask again once a member is cut or ends

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.population.members.pop(trial_id, None)

    @property
    def remaining(self) -> int | None:
        # Ray needs a count: the population, and a child for every comparison at most.
        return self.population.size * (1 + self.explore.budget // self.explore.interval)


class PBTScheduler(FIFOScheduler):
    """Compares each trial with the population every `perturbation_interval` steps, at
    the same step: a trial is ranked at step s by its value there against the values
    the others had at s, once at least half of the population has reached s (a trial
    that runs ahead waits for the others to catch up, a lagging one is judged when it
    gets there). A trial found in the bottom quantile is cut at its next report (it
    ends as pruned) and a child is queued in its place, from a top trial's checkpoint.
    A value that is not a number counts as the worst."""

    def __init__(self, spec: StudySpec, population: Population, explore: Explore) -> None:
        super().__init__()
        self.population = population
        self.explore = explore
        self._metric = spec.metric
        self._sign = 1.0 if spec.mode == "max" else -1.0
        self._interval = spec.search.perturbation_interval
        self._quantile = spec.search.quantile_fraction
        self._rng = np.random.default_rng(spec.search.seed)
        self._ended: dict[str, _Member] = {}  # members that ended: ranked, never cut
        self._saw_checkpoint = False  # whether any member has saved one

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        pop = self.population
        member = pop.members.get(trial.trial_id)
        value, step = result.get(self._metric), result.get(STEP_KEY)
        if member is None or value is None or step is None:
            return TrialScheduler.CONTINUE
        value = float(value)
        score = self._sign * value if math.isfinite(value) else -math.inf
        member.score, member.step = score, int(step)
        member.scores[member.step] = score
        if member.due is None:  # its first report: its comparisons start from here
            member.due = member.step + self._interval
            member.compared_at, member.score_then = member.step, score
        if pop.latest(trial.trial_id) is not None:
            self._saw_checkpoint = True
        self._compare_due()
        if member.cut and trial.trial_id in pop.members:
            return self._replace(trial.trial_id)
        return TrialScheduler.CONTINUE

    def _compare_due(self) -> None:
        """Judge every member whose comparison step enough of the population reached."""
        pop = self.population
        everyone = {**self._ended, **pop.members}
        for tid, m in list(pop.members.items()):
            while m.due is not None and m.step is not None and m.step >= m.due and not m.cut:
                at = m.due
                reached = {
                    t: x.score_at(at)
                    for t, x in everyone.items()
                    if x.step is not None and x.step >= at
                }
                scored = {t: v for t, v in reached.items() if v is not None}
                if len(scored) < max(2, math.ceil(len(everyone) / 2)):
                    break  # not enough of the population is there yet
                m.due = at + self._interval
                before = m.score_then
                m.score_then, m.compared_at = m.score_at(at), at
                self.explore.observe(m, at, before)
                bottom, top = _quantiles(scored, self._quantile)
                if tid in bottom and not self._saw_checkpoint:
                    pop.error = (
                        f"search.algorithm {self.explore.name} needs checkpoints, and the "
                        f"trainer saved none by step {at}: call tuner.report(..., "
                        "checkpoint=FOLDER) and start from tuner.get_checkpoint()"
                    )
                    pop.fail(pop.error)
                    m.cut = True
                elif tid in bottom and any(t in pop.members for t in top):
                    m.cut, m.donors = True, top

    def _replace(self, trial_id: str) -> str:
        """Cut `trial_id` (found in the bottom) and queue its child, from the latest
        checkpoint of a trial of the top it was ranked against that still runs and
        leaves the child steps to train."""
        pop = self.population
        member = pop.members[trial_id]
        member.cut = False
        if pop.error is not None:  # no checkpoint anywhere: the study stops
            return TrialScheduler.STOP
        live = [t for t in member.donors if t in pop.members and t != trial_id]
        donors = [(t, r) for t in live if (r := pop.latest(t)) is not None]
        donors = [(t, r) for t, r in donors if r.reports < self.explore.budget]
        if not donors:
            return TrialScheduler.CONTINUE  # nobody to take its place from: it goes on
        donor, restore = donors[int(self._rng.integers(len(donors)))]
        pop.pin(restore.uri)  # until the child has started from it
        config = self.explore.mutate(pop.members[donor].config, step=restore.step)
        pop.children.append(Child(config, donor, restore, pop.number(donor)))
        return TrialScheduler.STOP

    def _forget(self, trial_id: str) -> None:
        member = self.population.members.pop(trial_id, None)
        if member is not None:
            self._ended[trial_id] = member

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._forget(trial.trial_id)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._forget(trial.trial_id)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._forget(trial.trial_id)


def _quantiles(scores: dict[str, float], fraction: float) -> tuple[list[str], list[str]]:
    """The bottom and top `fraction` of `scores` (larger is better), at least one each
    and at most half each."""
    ranked = sorted(scores, key=lambda t: scores[t])
    n = min(max(1, math.ceil(len(ranked) * fraction)), len(ranked) // 2)
    return ranked[:n], ranked[-n:] if n else []


class Explore:
    """pbt's explore: sample a configuration, and mutate a donor's (see the module)."""

    name = "pbt"

    def __init__(self, spec: StudySpec) -> None:
        self._params: list[tuple[str, Param]] = list(spec.ordered_params)
        self._rng = np.random.default_rng(spec.search.seed)
        self._resample = spec.search.resample_probability
        self.budget = spec.trainer.budget
        self.interval = spec.search.perturbation_interval

    def sample(self) -> dict[str, Any]:
        """Every active parameter drawn at random from its range."""
        config: dict[str, Any] = {}
        for name, p in self._params:
            if p.is_active(config):
                config[name] = self._draw(p)
        return config

    def mutate(self, config: dict[str, Any], *, step: int) -> dict[str, Any]:
        """The donor's `config` moved: each parameter resampled or perturbed; a
        conditional one that becomes active is drawn, one that goes inactive dropped."""
        out: dict[str, Any] = {}
        for name, p in self._params:
            if not p.is_active(out):
                continue
            if name not in config or self._rng.random() < self._resample:
                out[name] = self._draw(p)
            else:
                out[name] = self._perturb(p, config[name])
        return out

    def observe(self, member: _Member, step: int, before: float | None) -> None:
        """A member was compared at `step`; `before`: its score at its last comparison
        (pb2 learns from the change; pbt does not)."""

    # -- one parameter ------------------------------------------------------------------

    def _choices(self, p: Param) -> list[Any] | None:
        if isinstance(p, CategoricalParam):
            return list(p.choices)
        return list(p.values) if p.values is not None else None

    def _draw(self, p: Param) -> Any:
        choices = self._choices(p)
        if choices is not None:
            return choices[int(self._rng.integers(len(choices)))]
        assert not isinstance(p, CategoricalParam)
        assert p.low is not None and p.high is not None  # a range, by the spec
        if p.log:
            value = math.exp(self._rng.uniform(math.log(p.low), math.log(p.high)))
        else:
            value = self._rng.uniform(p.low, p.high)
        return self._fit(p, value)

    def _perturb(self, p: Param, value: Any) -> Any:
        choices = self._choices(p)
        if choices is not None:
            i = choices.index(value) if value in choices else 0
            j = min(len(choices) - 1, max(0, i + (1 if self._rng.random() < 0.5 else -1)))
            return choices[j]
        assert not isinstance(p, CategoricalParam)
        factor = 1.2 if self._rng.random() < 0.5 else 0.8
        return self._fit(p, float(value) * factor)

    def _fit(self, p: Param, value: float) -> Any:
        """`value` clipped into the parameter's range, on its step, of its type."""
        assert not isinstance(p, CategoricalParam)
        assert p.low is not None and p.high is not None
        value = min(max(value, p.low), p.high)
        if isinstance(p, IntParam):
            stepped = p.low + round((value - p.low) / p.step) * p.step
            return int(min(max(stepped, p.low), p.high))
        if p.step is not None:
            value = p.low + round((value - p.low) / p.step) * p.step
            value = min(max(value, p.low), p.high)
        return float(value)


class PB2Explore(Explore):
    """pb2's explore: numeric parameters by GP-UCB on the improvement per step over
    each member's last interval (categorical ones are the donor's)."""

    name = "pb2"
    CANDIDATES = 256
    KAPPA = 1.0

    def __init__(self, spec: StudySpec) -> None:
        super().__init__(spec)
        self._numeric = [(name, p) for name, p in self._params if self._choices(p) is None]
        self._rows: list[list[float]] = []  # [step / budget, params in [0, 1]...]
        self._gains: list[float] = []

    def observe(self, member: _Member, step: int, before: float | None) -> None:
        now = member.score_at(step)
        if now is None or before is None or not math.isfinite(now) or not math.isfinite(before):
            return
        self._rows.append([step / self.budget, *self._unit(member.config)])
        self._gains.append((now - before) / self.interval)

    def mutate(self, config: dict[str, Any], *, step: int) -> dict[str, Any]:
        out = super().mutate(config, step=step)  # conditional structure, categoricals
        if len(self._gains) < 2 or not self._numeric:
            return out
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, WhiteKernel

        x, y = np.asarray(self._rows[-500:]), np.asarray(self._gains[-500:])
        scale = float(np.std(y)) or 1.0
        gp = GaussianProcessRegressor(
            kernel=RBF(length_scale=np.ones(x.shape[1])) + WhiteKernel(1e-2),
            normalize_y=True,
            random_state=int(self._rng.integers(2**31)),
        )
        with warnings.catch_warnings():  # few points: the kernel's bounds are often hit
            warnings.simplefilter("ignore")
            gp.fit(x, (y - float(np.mean(y))) / scale)
        units = self._rng.random((self.CANDIDATES, len(self._numeric)))
        t = np.full((self.CANDIDATES, 1), step / self.budget)
        mean, std = gp.predict(np.hstack([t, units]), return_std=True)
        best = units[int(np.argmax(mean + self.KAPPA * std))]
        for (name, p), u in zip(self._numeric, best, strict=True):
            if name in out:
                out[name] = self._from_unit(p, float(u))
        return out

    def _unit(self, config: dict[str, Any]) -> list[float]:
        out = []
        for name, p in self._numeric:
            assert not isinstance(p, CategoricalParam)
            assert p.low is not None and p.high is not None
            value = float(config.get(name, p.low))
            if p.log:
                lo, hi, v = math.log(p.low), math.log(p.high), math.log(max(value, p.low))
            else:
                lo, hi, v = float(p.low), float(p.high), value
            out.append((v - lo) / (hi - lo) if hi > lo else 0.0)
        return out

    def _from_unit(self, p: Param, u: float) -> Any:
        assert not isinstance(p, CategoricalParam)
        assert p.low is not None and p.high is not None
        if p.log:
            value = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
        else:
            value = p.low + u * (p.high - p.low)
        return self._fit(p, value)


def _build(spec: StudySpec, explore: Explore) -> PBTSearcher:
    population = Population(spec.search.population)
    searcher = PBTSearcher(spec, population, explore)
    searcher.scheduler = PBTScheduler(spec, population, explore)
    return searcher


def pbt(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> PBTSearcher:
    """Population Based Training; its scheduler is the searcher's ``scheduler``."""
    return _build(spec, Explore(spec))


def pb2(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> PBTSearcher:
    """Population Based Bandits: PBT whose explore is a GP bandit."""
    return _build(spec, PB2Explore(spec))
