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
