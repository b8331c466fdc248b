"""tuner.report's plateau rule (early_stopping.patience), without Ray."""

from __future__ import annotations

import contextlib

import pytest

from tuner import _report


@pytest.mark.parametrize(
    ("mode", "values", "stops_after"),
    [
        ("min", [5.0, 4.0, 4.0, 3.9, 4.5, 4.0], 6),  # 3.9 at report 4, then 2 without
        ("max", [0.5, 0.6, 0.6, 0.6], 4),
        ("min", [5.0, 4.0, 3.0, 2.0], None),  # improving: never
    ],
)
def test_a_trial_ends_quietly_after_patience_reports_without_improvement(
    monkeypatch, mode, values, stops_after
):
    sent: list[dict] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    rule = _report.PlateauRule(patience=2, min_delta=0.0, mode=mode)
    ran = []
    with _report.trial("loss", plateau=rule):
        for v in values:
            ran.append(v)
            _report.report(loss=v)
    reports = [r for r in sent if _report.ENDED_KEY not in r]
    assert len(reports) == (stops_after or len(values)) == len(ran)
    # The block ended on its own: its last result says how, so the trial completes.
    assert sent[-1][_report.ENDED_KEY] == ("plateau" if stops_after else "returned")


def test_a_block_left_by_an_exception_sends_no_end_mark(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    with pytest.raises(KeyboardInterrupt), _report.trial("loss"):
        _report.report(loss=1.0)
        raise KeyboardInterrupt
    assert [_report.ENDED_KEY in r for r in sent] == [False]


def test_min_delta_counts_small_changes_as_no_improvement(monkeypatch):
    monkeypatch.setattr(_report, "_send", lambda result: None)
    rule = _report.PlateauRule(patience=2, min_delta=0.1, mode="min")
    with _report.trial("loss", plateau=rule) as ctx:
        for v in [1.0, 0.95, 0.92, 0.5]:
            _report.report(loss=v)
    assert ctx.reports == 3  # 0.95 and 0.92 improve by less than 0.1


def test_an_objectives_except_exception_does_not_swallow_the_stop(monkeypatch):
    monkeypatch.setattr(_report, "_send", lambda result: None)
    rule = _report.PlateauRule(patience=1, min_delta=0.0, mode="min")
    with _report.trial("loss", plateau=rule) as ctx:
        for v in [1.0, 1.0, 1.0]:
            with contextlib.suppress(Exception):  # what a user's objective might do
                _report.report(loss=v)
    assert ctx.reports == 2


# -- how a trial ends inside its process (run_trial) ---------------------------------


def _objective_that_raises(ctx: _report.TrialContext) -> None:
    _report.report(loss=1.0)
    raise ValueError("bad x")


def test_the_objectives_exception_becomes_the_trials_last_result_not_an_error(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    _report.run_trial(_report.TrialRules("loss"), _objective_that_raises)  # does not raise
    assert sent[0]["loss"] == 1.0
    error = sent[-1][_report.ERROR_KEY]
    assert error.splitlines()[0] == "ValueError: bad x"
    assert "_objective_that_raises" in error  # the traceback reaches the driver
    assert set(sent[-1]) == {_report.ERROR_KEY}  # no metrics: nothing to rank it by


def test_a_dead_worker_group_is_raised_for_ray_to_retry(monkeypatch):
    from tuner.run._retry import WorkerDied

    monkeypatch.setattr(_report, "_send", lambda result: None)

    def loses_its_workers(ctx: _report.TrialContext) -> None:
        raise WorkerDied("worker group died: node lost")

    with pytest.raises(WorkerDied):
        _report.run_trial(_report.TrialRules("loss"), loses_its_workers)


def test_a_hung_objective_times_out_and_is_cancelled_at_its_next_report(monkeypatch):
    import threading
    import time

    sent: list[dict] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    release, ended = threading.Event(), threading.Event()
    after_timeout: list[str] = []

    def hangs(ctx: _report.TrialContext) -> None:
        try:
            _report.report(loss=1.0)
            release.wait(30)  # hung until the test lets it go
            _report.report(loss=0.5)  # the trial is over: this ends the function
            after_timeout.append("reported after the timeout")
        finally:
            ended.set()

    started = time.monotonic()
    _report.run_trial(_report.TrialRules("loss", timeout_s=0.5), hangs)
    assert time.monotonic() - started < 5  # the trial's process is free for the next
    assert sent == [{**sent[0], "loss": 1.0}, {_report.ERROR_KEY: "timed out after 0.5 s"}]
    release.set()
    assert ended.wait(5)
    assert after_timeout == []  # its late report was not sent, and it went no further
    assert len(sent) == 2
