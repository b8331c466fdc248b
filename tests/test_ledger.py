"""The trial ledger's rules, without Ray: how trials end, the counts, the best value."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tuner.run._ledger import TrialLedger
from tuner.storage import StudyState, TrialState


@dataclass
class Past:
    state: str
    value: float | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ledger(budget: int = 10, mode: str = "min", **kwargs) -> TrialLedger:
    return TrialLedger("loss", mode, budget, **kwargs)  # type: ignore[arg-type]


def run_to(led: TrialLedger, tid: str, values: list[float], *, done_at: int | None = None) -> bool:
    """Start `tid` and report `values`; the result at `done_at` is marked done."""
    led.start(tid)
    pruned = False
    for i, v in enumerate(values, start=1):
        pruned |= led.result(tid, {"loss": v}, iteration=i, done=i == done_at, stopping=False)
    return pruned


def test_numbers_follow_the_first_number_and_a_restart_keeps_its_number():
    led = ledger(first_number=5)
    assert led.start("a") == 5
    assert led.start("b") == 6
    assert led.start("a") is None  # a scheduler resumed it
    assert (led.number("a"), led.number("b"), led.number("zzz")) == (5, 6, None)
    assert led.running == 2


def test_a_trial_that_reaches_its_budget_is_completed_with_its_last_value():
    clock = Clock()
    led = ledger(budget=3, clock=clock)
    led.start("a")
    clock.now += 2.5
    assert not run_to(led, "a", [0.9, 0.5, 0.4], done_at=3)
    ended = led.complete("a", finished=True)
    assert ended is not None
    assert (ended.number, ended.state, ended.value, ended.error) == (0, "completed", 0.4, None)
    assert ended.duration_s == pytest.approx(2.5)
    assert ended.metrics == {"loss": 0.4}
    assert led.counts[TrialState.COMPLETED] == 1 and led.best == 0.4 and led.running == 0


def test_done_before_the_budget_means_the_scheduler_pruned_it():
    led = ledger(budget=10)
    assert run_to(led, "a", [0.9, 0.8], done_at=2)  # the searcher is told once
    assert not led.result("a", {"loss": 0.8}, iteration=2, done=True, stopping=False)
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.state == TrialState.PRUNED
    assert led.best is None  # pruned values are never the best


def test_done_before_the_budget_while_stopping_is_not_pruning():
    led = ledger(budget=10)
    led.start("a")
    assert not led.result("a", {"loss": 0.9}, iteration=1, done=True, stopping=True)
    ended = led.complete("a", finished=False)
    assert ended is not None and ended.state == TrialState.STOPPED


def test_a_trial_that_finished_on_its_own_while_stopping_is_completed():
    led = ledger(budget=2)
    run_to(led, "a", [0.5, 0.3])
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.state == TrialState.COMPLETED


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_metric_fails_the_trial(bad):
    led = ledger(budget=2)
    run_to(led, "a", [0.5, bad])
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.state == TrialState.FAILED
    assert ended.error == f"metric 'loss' is {bad}"
    assert led.first_error == f"metric 'loss' is {bad}"
    assert led.best is None


def test_an_error_fails_the_trial_and_the_first_line_is_kept():
    led = ledger()
    led.start("a")
    led.start("b")
    ended = led.fail("a", "ValueError: x must be >= 0\n\nTraceback ...")
    assert ended is not None and ended.state == TrialState.FAILED
    assert ended.error == "ValueError: x must be >= 0\n\nTraceback ..."
    led.fail("b", "RuntimeError: later")
    assert led.first_error == "ValueError: x must be >= 0"


def test_unknown_or_already_ended_trials_are_ignored():
    led = ledger()
    assert led.complete("nope", finished=True) is None
    assert led.fail("nope", "boom") is None
    assert not led.result("nope", {"loss": 1.0}, iteration=1, done=True, stopping=False)
    run_to(led, "a", [0.1])
    assert led.complete("a", finished=True) is not None
    assert led.fail("a", "late error") is None
    assert led.done == 1


def test_open_trials_are_stopped_when_the_run_ends():
    led = ledger()
    run_to(led, "a", [0.2])
    led.start("b")
    ended = led.stop_open()
    assert [(e.trial_id, e.state, e.value) for e in ended] == [
        ("a", "stopped", 0.2),
        ("b", "stopped", None),
    ]
    assert led.running == 0 and led.counts[TrialState.STOPPED] == 2


def test_history_counts_and_best_and_mode():
    history = [Past("completed", 0.3), Past("pruned", 0.1), Past("failed"), Past("stopped")]
    led = ledger(mode="max", budget=1, history=history)
    assert led.done == 4 and led.best == 0.3
    run_to(led, "a", [0.7])
    led.complete("a", finished=True)
    run_to(led, "b", [0.5])
    led.complete("b", finished=True)
    assert led.best == 0.7
    assert dict(led.counts) == {"completed": 3, "pruned": 1, "failed": 1, "stopped": 1}


def test_the_node_is_the_last_one_reported():
    led = ledger(budget=2)
    led.start("a")
    led.result("a", {"loss": 1.0}, iteration=1, done=False, stopping=False, node="n1")
    led.result("a", {"loss": 0.5}, iteration=2, done=False, stopping=False, node="n2")
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.node == "n2"


@pytest.mark.parametrize("unnamed", [None, ""])
def test_a_result_that_names_no_node_keeps_the_known_one(unnamed):
    led = ledger(budget=3)
    led.start("a")
    led.result("a", {"loss": 1.0}, iteration=1, done=False, stopping=False, node="n1")
    led.result("a", {"loss": 0.5}, iteration=2, done=False, stopping=False, node=unnamed)
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.node == "n1"


@pytest.mark.parametrize(
    ("states", "stopped", "expected"),
    [
        ([], False, StudyState.COMPLETED),
        (["failed", "failed"], False, StudyState.FAILED),
        (["failed", "pruned"], False, StudyState.COMPLETED),
        (["failed", "completed"], False, StudyState.COMPLETED),
        (["failed"], True, StudyState.STOPPED),
        (["stopped"], False, StudyState.COMPLETED),
    ],
)
def test_study_state(states, stopped, expected):
    led = ledger(history=[Past(s, 1.0) for s in states])
    assert led.study_state(stopped=stopped) == expected


# -- limits and retries ------------------------------------------------------------


def test_a_retry_keeps_the_number_and_drops_the_metrics():
    led = ledger()
    number = led.start("a")
    led.result("a", {"loss": 0.5}, iteration=1, done=False, stopping=False)
    assert led.retry("a", "ActorDiedError: the worker died") == (number, 2)
    assert led.number("a") == number
    assert led.retry("a", "again") == (number, 3)
    assert led.retry("unknown", "x") is None
    ended = led.complete("a", finished=True)
    assert ended is not None and ended.metrics == {} and ended.state == TrialState.COMPLETED


def test_max_failed_trials_fails_the_study_even_with_completed_trials():
    led = ledger(max_failed_trials=2)
    run_to(led, "ok", [0.1])
    led.complete("ok", finished=True)
    led.start("x")
    led.fail("x", "ValueError: one")
    assert not led.too_many_failures
    led.start("y")
    led.fail("y", "ValueError: two")
    assert led.too_many_failures
    assert led.study_state(stopped=True) == StudyState.FAILED
    assert led.first_error == "ValueError: one"


def test_failures_of_earlier_runs_do_not_count_towards_max_failed_trials():
    past = [Past("failed", None)] * 3
    led = ledger(max_failed_trials=2, history=past)
    assert not led.too_many_failures


# ------------------------------------------------------- several objectives, constraints

MO = [("loss", "min"), ("size", "min")]


def finish(led: TrialLedger, tid: str, metrics: dict[str, float], budget: int = 10):
    led.start(tid)
    led.result(tid, metrics, iteration=budget, done=False, stopping=False)
    return led.complete(tid, finished=True)


def test_several_objectives_keep_the_pareto_front_not_one_best():
    led = ledger(objectives=MO)
    for tid, loss, size in [("a", 1, 5), ("b", 2, 2), ("c", 3, 3), ("d", 5, 1), ("e", 1, 5)]:
        assert finish(led, tid, {"loss": loss, "size": size}).state == TrialState.COMPLETED
    # c is dominated by b; e equals a and adds nothing
    assert sorted(led.front) == [(1, 5), (2, 2), (5, 1)]
    assert led.best_text == "pareto 3"
    finish(led, "f", {"loss": 0.5, "size": 0.5})  # dominates everything
    assert led.front == [(0.5, 0.5)] and led.best_text == "pareto 1"


def test_a_missing_or_nan_objective_fails_the_trial_and_says_which():
    led = ledger(objectives=MO)
    ended = finish(led, "a", {"loss": 1.0})
    assert ended.state == TrialState.FAILED and ended.error == "objective 'size' was never reported"
    ended = finish(led, "b", {"loss": 1.0, "size": math.nan})
    assert ended.state == TrialState.FAILED and "'size' is nan" in ended.error
    assert led.front == []


def test_an_infeasible_trial_is_never_best():
    feasible = lambda m: m.get("latency", math.inf) <= 20  # noqa: E731
    led = ledger(feasible=feasible)
    finish(led, "fast", {"loss": 0.5, "latency": 10})
    ended = finish(led, "slow", {"loss": 0.1, "latency": 30})
    assert ended.state == TrialState.COMPLETED  # infeasible is not failed
    assert led.best == 0.5 and led.best_text == "loss=0.5"
    mo = ledger(objectives=MO, feasible=feasible)
    finish(mo, "slow", {"loss": 0.1, "size": 0.1, "latency": 30})
    assert mo.front == [] and mo.best_text == "-"


def test_history_feeds_the_front_and_skips_infeasible_trials():
    @dataclass
    class Old:
        state: str
        value: float | None
        values: tuple[float, ...] | None
        feasible: bool | None

    led = ledger(
        objectives=MO,
        history=[Old("completed", 1, (1, 1), True), Old("completed", 0, (0, 0), False)],
    )
    assert led.front == [(1, 1)]


def test_keep_best_gives_a_trial_the_metrics_of_its_best_report():
    led = ledger(budget=5, keep_best=True)
    led.start("a")
    for i, (loss, acc) in enumerate([(0.9, 0.1), (0.3, 0.8), (0.5, 0.7)], start=1):
        led.result("a", {"loss": loss, "acc": acc}, iteration=i, done=False, stopping=False)
    ended = led.complete("a", finished=True)  # stopped itself at 3 of 5 (plateau)
    assert ended is not None and ended.state == "completed"
    assert ended.value == 0.3 and ended.metrics == {"loss": 0.3, "acc": 0.8}
    assert led.best == 0.3
    last = ledger(budget=3)
    run_to(last, "a", [0.9, 0.3, 0.5], done_at=3)
    assert last.complete("a", finished=True).value == 0.5  # the default


def test_a_report_mistake_is_fatal_but_a_nan_metric_is_not():
    from tuner.run._ledger import fatal

    ledger = TrialLedger("loss", "min", budget=3)
    ledger.start("a")
    ledger.start("b")
    ledger.fail("a", "ValueError: x must be >= 0\n\ntraceback")
    assert ledger.fatal_error is None
    nan = "ReportError: metric 'loss' is NaN at step 2: the trial is failed (check ...)"
    assert not fatal(nan)
    missing = "ReportError: tuner.report() got no value for the study's metric 'loss' (got acc)"
    ledger.fail("b", missing + "\n\ntraceback")
    assert ledger.fatal_error == (1, missing)


def test_a_trial_cut_short_from_outside_is_never_completed():
    """Ctrl+C reaches Ray's workers too: a trial can end (Ray marks it done) before the
    driver knows the study is stopping. Short of its budget and without the mark of a
    function that ended on its own, it is stopped, not completed."""
    led = ledger(budget=30)
    led.start("a")
    for i in range(1, 6):
        assert not led.result("a", {"loss": 1.0 / i}, iteration=i, done=False, stopping=False)
    ended = led.complete("a", finished=False)
    assert ended is not None and ended.state == TrialState.STOPPED
    led.start("b")  # the same, but its function returned on its own at step 5
    for i in range(1, 6):
        led.result("b", {"loss": 1.0 / i}, iteration=i, done=False, stopping=False)
    assert led.complete("b", finished=True).state == TrialState.COMPLETED
    led.start("c")  # ran its whole budget; the mark lost with its worker: completed
    for i in range(1, 31):
        led.result("c", {"loss": 1.0 / i}, iteration=i, done=i == 30, stopping=False)
    assert led.complete("c", finished=False).state == TrialState.COMPLETED
