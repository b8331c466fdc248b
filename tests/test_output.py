"""A trial's own output: captured (bounded) while it runs, passed on to Ray's logs,
stored per attempt, and printed by `tuner logs NAME --trial N`; a trial knows its
number, study and attempt (tuner.current_trial())."""

from __future__ import annotations

import io
import sys

import pytest
from typer.testing import CliRunner

import tuner
from tests.storage.test_conformance import T0
from tuner import _output, _report
from tuner.cli import app
from tuner.storage import Storage, TrialFinished, TrialOutput, TrialStarted

runner = CliRunner()


def test_capture_keeps_what_is_new_since_the_last_report_and_passes_everything_on(
    monkeypatch,
):
    sent: list[dict] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    monkeypatch.setattr(_output, "_put_final_output", lambda text: sent.append({"final": text}))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with _report.trial("loss"):
        print("step one")
        print("careful", file=sys.stderr)
        _report.report(step=1, loss=1.0)
        _report.report(step=2, loss=0.5)  # nothing new: no output key
        print("done")
    assert sys.stdout is out and sys.stderr is err  # restored
    assert out.getvalue() == "step one\ndone\n" and err.getvalue() == "careful\n"  # passed on
    assert sent[0][_output.OUTPUT_KEY] == "step one\ncareful\n"
    assert _output.OUTPUT_KEY not in sent[1]
    assert sent[2] == {"final": "done\n"}  # after the last report: left for the driver


def test_the_buffer_keeps_only_the_last_limit_bytes():
    tail = _output.OutputTail(limit=1024)
    for i in range(1000):
        tail.write(f"line {i} é\n")
    text = tail.take()
    assert len(text.encode()) <= 1024
    assert text.endswith("line 999 é\n")
    assert tail.take() == ""


def test_outside_a_trial_current_trial_is_none():
    assert tuner.current_trial() is None


def _study_with_output(url: str) -> None:
    spec = {
        "name": "talk",
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    tuner.create_study(spec, storage=url)
    with Storage(url) as storage:
        study = storage.get_study("talk")
        storage.write(
            [
                TrialStarted(study.id, 0, {"x": 0.1}, T0),
                TrialOutput(study.id, 0, 1, "hello from trial 0\n"),
                TrialFinished(study.id, 0, "completed", T0, 1.0, {"loss": 1.0}, 1.0),
                TrialStarted(study.id, 1, {"x": 0.2}, T0),
                TrialFinished(study.id, 1, "completed", T0, 1.0, {"loss": 1.0}, 1.0),
            ]
        )


def test_logs_trial_prints_a_trials_output_and_one_line_for_an_unknown_number(sqlite_url):
    _study_with_output(sqlite_url)
    result = runner.invoke(app, ["logs", "talk", "--trial", "0", "--storage", sqlite_url])
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello from trial 0\n"

    result = runner.invoke(app, ["logs", "talk", "--trial", "1", "--storage", sqlite_url])
    assert result.exit_code == 0
    assert result.stderr.strip() == "trial 1 of study talk wrote nothing"

    result = runner.invoke(app, ["logs", "talk", "--trial", "5", "--storage", sqlite_url])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: study 'talk' has no trial 5 (its trials: 0-1)"


@pytest.mark.integration
def test_a_trials_output_is_stored_bounded_kept_when_it_fails_and_knows_its_number(
    ray_local, sqlite_url
):
    data = {
        "name": "chatty",
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": "tests.objectives:chatty"},
        "search_space": {"x": {"type": "float", "values": [-0.5, 0.5, 0.9]}},
        "search": {"algorithm": "grid", "max_concurrent": 3},
    }
    study = tuner.create_study(data, storage=sqlite_url).run(progress=False)
    trials = {t.number: t for t in study.trials()}
    assert sorted(trials) == [0, 1, 2]
    for number, trial in trials.items():
        [out] = study.trial_output(number)
        # current_trial() gave the number that storage holds for these params.
        x = trial.params["x"]
        assert out.text.endswith("after the last report\n")  # written after the last report
        if x > 0.8:  # 100 KB printed: its last 64 KiB are kept
            assert out.truncated and len(out.text.encode()) == _output.OUTPUT_LIMIT
            assert out.text.endswith("y" * 1000 + "\nafter the last report\n")
            continue
        assert not out.truncated
        assert out.text.startswith(f"trial {number} of chatty, attempt 1, x={x}\n")
        assert "a warning on stderr\n" in out.text
        if x < 0:
            assert trial.state == "failed" and trial.error.startswith("ValueError: x must be")
            # The user's frames come first; Ray's never appear (the error was caught in
            # the trial's process, below Ray's frames), tuner's come after the user's.
            assert "/ray/" not in trial.error
            assert trial.error.index("objectives.py") < trial.error.index("Library frames")
    failed = next(n for n, t in trials.items() if t.state == "failed")
    result = runner.invoke(app, ["logs", "chatty", "--trial", str(failed), "--storage", sqlite_url])
    assert result.exit_code == 0
    assert "a warning on stderr\nafter the last report\n" in result.stdout


def test_logs_trial_follow_prints_a_running_trials_output_until_it_ends(sqlite_url):
    import threading
    import time

    _study_with_output(sqlite_url)
    with Storage(sqlite_url) as storage:
        study = storage.get_study("talk")
        storage.write(
            [TrialStarted(study.id, 2, {"x": 0.3}, T0), TrialOutput(study.id, 2, 1, "epoch 0\n")]
        )

    def finish_later() -> None:
        time.sleep(1.5)
        with Storage(sqlite_url) as storage:
            storage.write(
                [
                    TrialOutput(study.id, 2, 1, "epoch 1\n"),
                    TrialFinished(study.id, 2, "completed", T0, 2.0, {"loss": 0.5}, 0.5),
                    TrialOutput(study.id, 2, 1, "bye\n"),  # what it wrote after its last report
                ]
            )

    writer = threading.Thread(target=finish_later)
    writer.start()
    result = runner.invoke(
        app, ["logs", "talk", "--trial", "2", "--follow", "--storage", sqlite_url]
    )
    writer.join()
    assert result.exit_code == 0, result.output
    assert result.stdout == "epoch 0\nepoch 1\nbye\n"
