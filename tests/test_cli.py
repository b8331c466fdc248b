"""The `tuner` command through typer's runner (and once as a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import tuner
from tuner.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SPEC = {
    "name": "cli-study",
    "metric": "loss",
    "trainer": {"kind": "python", "function": "tests.objectives:quadratic", "max_steps": 12},
    "search_space": {
        "x": {"type": "float", "low": -1.0, "high": 1.0},
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
    },
    "search": {"algorithm": "tpe", "num_trials": 5, "max_concurrent": 2, "seed": 0},
}


def write_spec(tmp_path, **changes):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}))
    return path


@pytest.fixture(scope="module")
def ran_once(ray_local, tmp_path_factory):
    """`tuner run` of SPEC, once for the module: its database file and the CLI's result."""
    folder = tmp_path_factory.mktemp("cli-ran")
    db = folder / "tuner.db"
    result = runner.invoke(app, ["run", str(write_spec(folder)), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    return db, result


@pytest.fixture
def ran(ran_once, tmp_path):
    """A copy of the module's finished study (its URL, and the run's CLI result), for
    this test alone to read or change."""
    import sqlite3

    db, result = ran_once
    copy = tmp_path / "tuner.db"
    # The backup API reads through SQLite's write-ahead log, which a file copy would miss.
    src, dst = sqlite3.connect(db), sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{copy}", result


def test_run_prints_summary_and_best(ran):
    _, result = ran
    assert "study cli-study: completed (5 completed) in" in result.output
    assert "best trial #" in result.output


def test_list_show_best(ran):
    url, _ = ran
    out = runner.invoke(app, ["list", "--storage", url]).output
    assert "cli-study" in out and "completed" in out and "tpe" in out
    out = runner.invoke(app, ["show", "cli-study", "--storage", url]).output
    assert "trials: 5 completed" in out
    best = json.loads(runner.invoke(app, ["best", "cli-study", "--storage", url, "--json"]).output)
    assert set(best) == {"number", "value", "params", "metrics"}
    study = tuner.load_study("cli-study", storage=url)
    assert best["value"] == study.best_trial.value


def test_export_json_csv_parquet(ran, tmp_path):
    url, _ = ran
    result = runner.invoke(app, ["export", "cli-study", "--format", "json", "--storage", url])
    rows = json.loads(result.output)
    assert len(rows) == 5
    first = rows[0]
    assert set(first) == {
        "number",
        "state",
        "params",
        "metrics",
        "intermediate",
        "node",
        "started",
        "duration_s",
        "error",
        "attempts",  # added by the retries (limits.max_retries)
        "attempt_errors",
        "model",  # added by the checkpoints: the kept model's URI, or null
        "parent",
    }
    assert first["attempts"] == 1 and first["attempt_errors"] == []
    assert first["state"] == "completed"
    assert [s for s, _ in first["intermediate"]["loss"]] == list(range(1, 13))
    assert first["metrics"]["loss"] == first["intermediate"]["loss"][-1][1]
    for row in rows:  # active parameters only
        assert ("rate_drop" in row["params"]) == (row["params"]["booster"] == "dart")

    csv_path, pq_path = tmp_path / "t.csv", tmp_path / "t.parquet"
    assert (
        runner.invoke(
            app, ["export", "cli-study", "-f", "csv", "-o", str(csv_path), "--storage", url]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["export", "cli-study", "-f", "parquet", "-o", str(pq_path), "--storage", url]
        ).exit_code
        == 0
    )
    for frame in (pd.read_csv(csv_path), pd.read_parquet(pq_path)):
        assert len(frame) == 5
        assert {"params.x", "params.booster", "metrics.loss", "state"} <= set(frame.columns)


def test_delete_needs_confirmation(ran):
    url, _ = ran
    result = runner.invoke(app, ["delete", "cli-study", "--storage", url], input="n\n")
    assert result.exit_code == 1
    assert tuner.load_study("cli-study", storage=url)
    result = runner.invoke(app, ["delete", "cli-study", "--storage", url, "--yes"])
    assert result.exit_code == 0
    assert "cli-study" not in runner.invoke(app, ["list", "--storage", url]).output


def _stored_folder(root: Path, study: str, number: int = 0) -> Path:
    """A complete stored folder of a study's trial, as ArtifactStore.put_dir leaves it."""
    folder = root / study / f"trial-{number:05d}" / "model-00000003"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 10)
    (folder / "_COMPLETE").write_bytes(b"")
    return folder


def test_delete_removes_the_studys_files_and_no_other(tmp_path, sqlite_url):
    """No Ray: the studies are created, not run, and their files laid out by hand."""
    from datetime import UTC, datetime

    from tuner.storage import ArtifactSaved, Storage, TrialStarted

    study = tuner.create_study(SPEC, storage=sqlite_url)
    tuner.create_study(SPEC, storage=sqlite_url, name="other")
    store = tmp_path / "tuner-artifacts"  # the default: beside tuner.db
    mine, theirs = _stored_folder(store, "cli-study"), _stored_folder(store, "other")
    # a file stored from another folder (a relative artifacts.store): found by its row
    elsewhere = _stored_folder(tmp_path / "elsewhere", "cli-study", 1)
    record = study.storage.get_study("cli-study")
    study.storage.write(
        [
            TrialStarted(record.id, 1, {"x": 0.0, "booster": "gbtree"}, datetime.now(UTC)),
            ArtifactSaved(record.id, 1, 3, "model", str(elsewhere), 10),
        ]
    )
    result = runner.invoke(app, ["delete", "cli-study", "--storage", sqlite_url, "--yes"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert not (store / "cli-study").exists() and not mine.exists()
    assert not (tmp_path / "elsewhere" / "cli-study").exists()
    assert theirs.is_dir() and (theirs / "weights.bin").is_file()
    with Storage(sqlite_url) as storage:
        assert [s.study.name for s in storage.list_studies()] == ["other"]


def test_delete_with_an_unreachable_store_deletes_the_rows_and_warns(tmp_path, sqlite_url):
    tuner.create_study(
        {**SPEC, "artifacts": {"store": "nosuchproto://bucket/runs"}}, storage=sqlite_url
    )
    result = runner.invoke(app, ["delete", "cli-study", "--storage", sqlite_url, "--yes"])
    assert result.exit_code == 0, result.output
    assert "deleted study cli-study" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("warning: nosuchproto://bucket/runs/cli-study was left behind")
    out = runner.invoke(app, ["list", "--storage", sqlite_url]).output
    assert "cli-study" not in out


def test_existing_name_is_exit_2_and_keeps_the_study(ran, tmp_path):
    url, _ = ran
    result = runner.invoke(app, ["run", str(write_spec(tmp_path)), "--storage", url])
    assert result.exit_code == 2
    assert "already" in result.output and "cli-study" in result.output
    assert len(tuner.load_study("cli-study", storage=url).trials()) == 5


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "missing.yaml"], "missing.yaml: no such file"),
        (["show", "nope"], "nope"),
        (["export", "nope", "--format", "xml"], "--format must be one of csv, json, parquet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, sqlite_url, args, expected):
    from tuner.storage import Storage

    Storage(sqlite_url).close()  # a database without that study
    result = runner.invoke(app, [*args, "--storage", sqlite_url])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0


def test_bad_spec_is_one_line_and_exit_2(tmp_path, sqlite_url):
    path = write_spec(tmp_path, search_space={"eta": {"type": "float", "low": 0.5, "high": 0.1}})
    result = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {path}: search_space.eta: low must be < high (got low=0.5, high=0.1)"
    )


def test_malformed_storage_url_is_exit_2(tmp_path):
    result = runner.invoke(app, ["list", "--storage", "not a url"])
    assert result.exit_code == 2
    assert "not a url" in result.output and "sqlite:///" in result.output


def test_failed_study_is_exit_1(ray_local, tmp_path, sqlite_url):
    path = write_spec(
        tmp_path,
        trainer={"kind": "python", "function": "tests.objectives:always_fails"},
        search={"algorithm": "random", "num_trials": 2},
    )
    result = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert result.exit_code == 1
    assert "RuntimeError: the data loader is broken" in result.output


def test_unimportable_function_is_exit_2_before_any_trial(tmp_path, sqlite_url):
    path = write_spec(tmp_path, trainer={"kind": "python", "function": "no_such_module:f"})
    result = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert result.exit_code == 2
    assert "cannot import module 'no_such_module'" in result.output
    assert f"error: {path}: trainer.function: cannot import" in result.output
    # Nothing ran, so the study is not kept: the same command works once the spec is fixed.
    assert "cli-study" not in runner.invoke(app, ["list", "--storage", sqlite_url]).output
    again = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert again.exit_code == 2 and "already" not in again.output


def test_help_is_quick_and_does_not_import_ray():
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tuner.cli import app; import tuner;"
            "print('ray' in sys.modules, 'optuna' in sys.modules, 'sqlalchemy' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False", "False"]
    result = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "run" in result.stdout and "export" in result.stdout
    assert time.monotonic() - started < 5


def test_resume_after_a_killed_driver_loses_and_reruns_nothing(tmp_path):
    """A real crash: the `tuner run` process is killed mid-study, then resumed. The
    running trial with a checkpoint goes on from it under its own number; the one
    without is kept as stopped."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    path = write_spec(
        tmp_path,
        name="crashy",
        trainer={
            "kind": "python",
            "function": "tests.objectives:slow_checkpointed",
            "max_steps": 400,
        },
        search={"algorithm": "tpe", "num_trials": 4, "max_concurrent": 2, "seed": 0},
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", "run", str(path), "--storage", url, "--no-progress"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    study = None
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            study = tuner.load_study("crashy", storage=url)
            trials = study.trials()
            if len(trials) == 2 and all(t.steps >= 20 for t in trials):
                break
        except tuner.TunerError:
            continue
    os.killpg(proc.pid, 9)  # the driver and everything it started
    proc.wait()
    assert study is not None
    before = {t.number: t for t in study.trials()}
    assert sorted(before) == [0, 1] and all(t.state == "running" for t in before.values())
    # Trial 0's checkpoints (its latest, and maybe an older one the killed driver had
    # not deleted yet); none of trial 1's.
    kept = [a for a in study.artifacts() if a.kind == "checkpoint"]
    assert {a.number for a in kept} == {0} and len(kept) <= 3
    checkpoint = max(kept, key=lambda a: a.step)
    assert checkpoint.step >= 20

    resumed = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "resume", "crashy", "--storage", url, "--no-progress"],
        cwd=ROOT,
        env={**env, "TUNER_TEST_SLOW_STEPS": "60"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    study = tuner.load_study("crashy", storage=url)
    after = {t.number: t for t in study.trials()}
    # Trial 0 went on from its checkpoint, under its number: every step once.
    going_on = after[0]
    assert (going_on.state, going_on.attempts) == ("completed", 2)
    assert going_on.metrics["from_step"] == checkpoint.step + 1
    steps = [s for s, _ in study.intermediate([0])[0]["loss"]]
    assert steps == list(range(1, 61))
    # Trial 1 had no checkpoint: kept as it was, stopped.
    assert after[1].state == "stopped" and after[1].params == before[1].params
    assert after[1].steps >= before[1].steps
    finished = [t for t in after.values() if t.state in ("completed", "pruned", "failed")]
    assert len(finished) == 4
    assert min(t.number for t in finished if t.number != 0) > max(before)
    # Every older checkpoint went as trial 0 ended: the store holds the best models only.
    assert {a.kind for a in study.artifacts()} == {"model"}


def test_module_failing_on_its_own_import_shows_the_real_error(tmp_path, sqlite_url):
    """A module beside the spec that imports a missing package: the user sees that
    package and the line, not "put it beside the spec file" (it is there)."""
    module = tmp_path / "broken_objective_mod.py"
    module.write_text("import os\nimport torchh\n\n\ndef f(config):\n    return 0.0\n")
    path = write_spec(tmp_path, trainer={"kind": "python", "function": "broken_objective_mod:f"})
    result = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "ModuleNotFoundError: No module named 'torchh'" in out
    assert f"in {module} line 2" in out
    assert "put it beside the spec file" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["show", "nope"],
        ["best", "nope"],
        ["resume", "nope"],
        ["stop", "nope"],
        ["export", "nope"],
        ["delete", "nope", "--yes"],
    ],
)
def test_read_commands_never_create_a_database(argv, tmp_path, monkeypatch):
    """In a folder without tuner.db, a command that reads says so and leaves none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: no tuner database at sqlite:///tuner.db; run a study first or pass --storage"
    ]
    assert list(tmp_path.iterdir()) == []


def test_finished_study_stop_resume_and_extend(ran, tmp_path, monkeypatch):
    """A completed study: stop says so, resume says so without starting Ray, run of the
    same name points at resume, and resume --num-trials N runs it on to N trials."""
    from tuner import _ray

    url, _ = ran
    stop = runner.invoke(app, ["stop", "cli-study", "--storage", url])
    assert stop.exit_code == 0, stop.output
    assert stop.output.strip() == "study cli-study is already completed: nothing to stop"
    assert (
        not tuner.load_study("cli-study", storage=url).storage.get_study("cli-study").stop_requested
    )

    real_ensure_ray = _ray.ensure_ray
    monkeypatch.setattr(_ray, "ensure_ray", lambda *a, **k: pytest.fail("Ray started"))
    again = runner.invoke(app, ["resume", "cli-study", "--storage", url])
    assert again.exit_code == 0, again.output
    assert "study cli-study is already completed (5 trials)" in again.output
    assert "tuner resume cli-study --num-trials N" in again.output

    rerun = runner.invoke(app, ["run", str(write_spec(tmp_path)), "--storage", url])
    assert rerun.exit_code == 2
    assert "tuner resume cli-study" in rerun.output and "--name" in rerun.output
    assert "load_study" not in rerun.output

    fewer = runner.invoke(app, ["resume", "cli-study", "--num-trials", "5", "--storage", url])
    assert fewer.exit_code == 2
    assert "already has 5 finished trials" in fewer.output

    monkeypatch.setattr(_ray, "ensure_ray", real_ensure_ray)
    more = runner.invoke(app, ["resume", "cli-study", "--num-trials", "7", "--storage", url])
    assert more.exit_code == 0, more.output
    assert "study cli-study: completed (7 completed)" in more.output
    study = tuner.load_study("cli-study", storage=url)
    assert len(study.trials()) == 7 and study.spec.search.num_trials == 7
    assert study.storage.get_study("cli-study").num_trials == 7


def test_a_function_that_never_reports_the_metric_stops_the_study_at_once(
    ray_local, tmp_path, sqlite_url
):
    """Every trial would fail the same way: one line, exit 2, not 6 failed trials."""
    path = write_spec(
        tmp_path,
        trainer={"kind": "python", "function": "tests.objectives:reports_another_metric"},
        search={"algorithm": "random", "num_trials": 6, "max_concurrent": 1, "seed": 0},
    )
    result = runner.invoke(app, ["run", str(path), "--storage", sqlite_url])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.output.strip().endswith(errors[0]), result.output
    assert errors[0].startswith(
        "error: study 'cli-study' stopped: trial #0 failed with a mistake every trial "
        "would repeat: ReportError: tuner.report() got no value for the study's metric 'loss'"
    )
    assert "Fix it, then `tuner resume cli-study`" in errors[0]
    study = tuner.load_study("cli-study", storage=sqlite_url)
    assert study.status == "stopped"
    states = [t.state for t in study.trials()]
    assert states[0] == "failed" and len(states) <= 2, states
