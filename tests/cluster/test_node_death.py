"""A worker node dies (its raylet and everything it started, SIGKILLed) while its trials
run: the study still completes with every trial, and the ones that were on it ran again
(same number and params) from their last checkpoint, with their attempts recorded. A
cluster of its own, since this test kills one of its nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster._cluster import LocalCluster, NodeSpec
from tests.cluster.conftest import tuner_cli

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

OBJECTIVE = """
import tempfile
import time
from pathlib import Path

import tuner


def objective(config):
    start = 1
    restored = tuner.get_checkpoint()
    if restored is not None:
        start = int((restored / "step").read_text()) + 1
    folder = Path(tempfile.mkdtemp())
    for step in range(start, 5):
        time.sleep(1.0)
        (folder / "step").write_text(str(step))
        tuner.report(
            step=step,
            checkpoint=folder,
            loss=(config["x"] - 0.5) ** 2 + 1.0 / step,
            from_step=start,
        )
"""


def test_trials_on_a_dead_node_run_again_and_the_study_completes(
    pg_storage: str, tmp_path: Path
) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "node_death_objective.py").write_text(OBJECTIVE)
    spec = {
        "name": "node-death",
        "metric": "loss",
        "trainer": {"kind": "python", "function": "node_death_objective:objective", "max_steps": 4},
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": 6, "max_concurrent": 3},
        "limits": {"max_retries": 2},
        # A folder every node of this one-machine cluster sees.
        "artifacts": {"store": str(tmp_path / "store")},
    }
    (folder / "study.yaml").write_text(json.dumps(spec))
    # The head notices a dead node after 5 failed health checks, 1 s apart (Ray's
    # default is 3 s apart: 15 s of the test spent waiting).
    fast_health = {"RAY_health_check_period_ms": "1000"}
    with LocalCluster(
        NodeSpec(cpus=1), [NodeSpec(cpus=2)], dashboard=False, node_env=fast_health
    ) as cluster:
        env = {**cluster.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        driver = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", "run", "study/study.yaml", "--address",
             cluster.address, "--storage", pg_storage, "--no-progress"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            import tuner

            # Three in flight on 1 + 2 CPUs: two of them on the worker node.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    running = tuner.load_study("node-death", storage=pg_storage).trials()
                except tuner.TunerError:
                    running = []
                saved = {t.number for t in running if t.state == "running" and t.steps >= 1}
                if len(saved) >= 3:
                    break  # each has a checkpoint
                time.sleep(0.5)
            else:
                pytest.fail("three trials never ran at once")
            cluster.kill_node(0)
            out, _ = driver.communicate(timeout=240)
        finally:
            if driver.poll() is None:
                driver.kill()
    assert driver.returncode == 0, out
    exported = tuner_cli(
        "export", "node-death", "--format", "json", "--storage", pg_storage,
        env=cluster.env, cwd=tmp_path,
    )  # fmt: skip
    trials = json.loads(exported.stdout)
    assert sorted(t["number"] for t in trials) == list(range(6))  # none lost, none twice
    assert all(t["state"] == "completed" for t in trials), [t["state"] for t in trials]
    retried = [t for t in trials if t["attempts"] > 1]
    assert retried, "no trial was retried after its node died"
    for t in retried:
        assert t["attempt_errors"] and len(t["intermediate"]["loss"]) == 4  # not doubled
    # Those that had a checkpoint when the node died went on from it, not from step 1
    # (one that had just started on the node when it died had none).
    went_on = [t for t in retried if t["number"] in saved]
    assert went_on, "no trial with a checkpoint was on the dead node"
    assert all(t["metrics"]["from_step"] >= 2 for t in went_on), went_on
