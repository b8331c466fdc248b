"""`tuner run` as a process under faults: SIGKILL at several points then `tuner resume`,
SIGTERM, and services that are not there. Each test checks the database afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import tuner

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def write_spec(tmp_path: Path, name: str, function: str, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": f"tests.objectives:{function}", "max_steps": 10},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": 4, "max_concurrent": 2, "seed": 0},
    }
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args: str, marker: str = "", **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "TUNER_TEST_MARKER": marker}
    environ.pop("RAY_ADDRESS", None)  # a local Ray of its own, unless `env` names one
    environ.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *args, "--no-progress"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def marked_processes(marker: str) -> list[int]:
    """The processes whose environment carries `marker`: the CLI and all it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"TUNER_TEST_MARKER={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def wait_for(predicate: Any, url: str, name: str, timeout: float = 180) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = tuner.load_study(name, storage=url).trials()
            if predicate(trials):
                return trials
        except tuner.TunerError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting on study {name}")


@pytest.fixture(scope="module")
def ray_address(ray_local: None) -> str:
    """The session's local Ray, for CLI processes to join (a start costs seconds)."""
    import ray

    return ray.get_runtime_context().gcs_address


KILL_POINTS = {
    "early": lambda trials: True,  # the study exists: nothing or little has started
    "trials running": lambda trials: any(t.state == "running" for t in trials),
    "mid": lambda trials: sum(t.state == "completed" for t in trials) >= 4,
}

# Loaded by the driver (first on its PYTHONPATH) for the "during a write" point: the
# first commit of a transaction that wrote trial results holds, uncommitted, until the
# driver is killed; the marker file says it is held.
HOLD_WRITE = """
import os, time
from sqlalchemy import event
from sqlalchemy.engine import Engine

_marker = os.environ["TUNER_TEST_HOLD_WRITE"]
_wrote = set()

@event.listens_for(Engine, "before_cursor_execute")
def _seen(conn, cursor, statement, parameters, context, executemany):
    if "trial_values" in statement and not statement.lstrip().upper().startswith("SELECT"):
        _wrote.add(id(conn))

@event.listens_for(Engine, "commit")
def _hold(conn):
    if id(conn) in _wrote and not os.path.exists(_marker):
        open(_marker, "w").close()
        time.sleep(600)
"""


def test_driver_killed_at_several_points_then_resumed_finishes_exactly_n(
    tmp_path: Path, ray_address: str
) -> None:
    url = f"sqlite:///{tmp_path / 'kills.db'}"
    n = 10
    path = write_spec(
        tmp_path, "killed", "steady", search={"algorithm": "tpe", "num_trials": n, "seed": 0}
    )
    kept: dict[int, Any] = {}
    first = True
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_WRITE)
    held = tmp_path / "held"
    points = {**KILL_POINTS, "during a write": lambda trials: held.exists()}
    for point, predicate in points.items():
        args = ("run", str(path)) if first else ("resume", "killed")
        env = {}
        if point == "during a write":
            env = {"PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "TUNER_TEST_HOLD_WRITE": str(held)}
        proc = cli(*args, "--storage", url, *(("--address", ray_address) if first else ()), **env)
        first = False
        wait_for(predicate, url, "killed")
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash would
        proc.communicate(timeout=30)
        finished = {t.number: t for t in tuner.load_study("killed", storage=url).trials()}
        for number, old in kept.items():
            assert finished[number] == old, f"trial {number} changed ({point})"
        kept = {k: t for k, t in finished.items() if t.state in ("completed", "pruned", "failed")}
    done = cli("resume", "killed", "--storage", url)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    trials = tuner.load_study("killed", storage=url).trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1
    assert sum(t.state == "completed" for t in trials) == n
    assert {t.state for t in trials} <= {"completed", "stopped"}
    assert len(kept) >= 4  # the "mid" kill point waited for 4 completed trials
    for number, old in kept.items():
        assert next(t for t in trials if t.number == number) == old


def test_sigterm_stops_the_run_cleanly_and_resume_continues_it(
    tmp_path: Path, ray_address: str
) -> None:
    url = f"sqlite:///{tmp_path / 'term.db'}"
    path = write_spec(tmp_path, "termed", "slow", search={"num_trials": 4, "max_concurrent": 2})
    marker = uuid.uuid4().hex
    proc = cli("run", str(path), "--storage", url, marker=marker, TUNER_TEST_SLOW_STEPS="2000")
    wait_for(lambda ts: sum(t.state == "running" and t.steps > 0 for t in ts) == 2, url, "termed")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 143, err
    assert took < 10, took
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[-1].startswith(
        "interrupted: study 'termed' stopped by SIGTERM"
    )
    assert len(lines) <= 2, err  # "study termed: URL" at the start, then the one line
    deadline = time.monotonic() + 2  # the run's Ray and its workers gone within 2 s
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_processes(marker) == []
    study = tuner.load_study("termed", storage=url)
    assert study.status == "stopped"
    assert [t.state for t in study.trials()] == ["stopped", "stopped"]

    # The run had a Ray of its own (its processes are checked above); the resume joins
    # the session's, as a start costs seconds.
    resumed = cli(
        "resume", "termed", "--storage", url, TUNER_TEST_SLOW_STEPS="5", RAY_ADDRESS=ray_address
    )
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    trials = tuner.load_study("termed", storage=url).trials()
    assert sum(t.state == "completed" for t in trials) == 4


def test_an_unreachable_ray_address_is_one_line_in_seconds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'noray.db'}"
    path = write_spec(tmp_path, "noray", "quadratic")
    started = time.monotonic()
    proc = cli("run", str(path), "--storage", url, "--address", "127.0.0.1:1")
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: cannot reach the Ray cluster at 127.0.0.1:1"), err
    assert "Traceback" not in err and len(lines) <= 2, err
    # nothing ran, so the same command works once the address is fixed
    with pytest.raises(tuner.TunerError, match="no study named"):
        tuner.load_study("noray", storage=url)


@pytest.mark.parametrize(
    "storage",
    [
        "postgresql://tuner@127.0.0.1:1/tuner",  # nothing listens
        "postgresql://postgres@127.0.0.1:5432/no_such_database_here",  # refuses
    ],
)
def test_an_unreachable_or_refusing_database_is_one_line_in_seconds(
    tmp_path: Path, storage: str
) -> None:
    path = write_spec(tmp_path, "nodb", "quadratic")
    started = time.monotonic()
    proc = cli("run", str(path), "--storage", storage)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot"), err


def test_sigint_while_ray_starts_is_one_line_and_a_stopped_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'early.db'}"
    path = write_spec(tmp_path, "early", "quadratic")
    proc = cli("run", str(path), "--storage", url)
    # The study is stored before Ray starts, which takes seconds: signal in between.
    wait_for(lambda ts: True, url, "early", timeout=60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        "interrupted: study 'early' stopped by SIGINT while Ray was starting, before any "
        "trial ran; `tuner resume early` runs it"
    ], err
    study = tuner.load_study("early", storage=url)
    assert study.status == "stopped" and study.trials() == []


def test_signals_at_random_moments_never_record_a_cut_trial_as_completed(
    tmp_path: Path, ray_address: str
) -> None:
    """SIGINT or SIGTERM reaches the driver at a random moment of each of three runs
    of one study, while trials of 12 steps of 50 ms run two at a time: whatever the
    order of the stop and a trial's last steps, a completed trial ran all its steps and
    every other one is stopped."""
    import random

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    url = f"sqlite:///{tmp_path / 'hammer.db'}"
    steps = 12
    path = write_spec(
        tmp_path,
        "hammer",
        "slow",
        trainer={"kind": "python", "function": "tests.objectives:slow", "max_steps": steps},
        search={"algorithm": "random", "num_trials": 60, "max_concurrent": 2, "seed": 0},
    )
    for round_ in range(3):
        args = ("run", str(path), "--address", ray_address) if round_ == 0 else ("resume", "hammer")
        proc = cli(*args, "--storage", url, TUNER_TEST_SLOW_STEPS=str(steps))
        wait_for(lambda ts: any(t.steps > 0 for t in ts if t.state == "running"), url, "hammer")
        time.sleep(rng.uniform(0.0, 0.6))  # anywhere in a trial of 0.6 s
        signum = rng.choice([signal.SIGINT, signal.SIGTERM])
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 128 + signum), (seed, err)
    trials = tuner.load_study("hammer", storage=url).trials()
    cut = [(t.number, t.steps) for t in trials if t.state == "completed" and t.steps < steps]
    assert cut == [], (seed, cut)
    assert {t.state for t in trials} <= {"completed", "stopped"}, (seed, trials)
    assert any(t.state == "stopped" for t in trials), seed  # the signals cut trials short
