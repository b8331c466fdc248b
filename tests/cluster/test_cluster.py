"""tuner on a real multi-node Ray cluster (tests/cluster/conftest.py): trials spread over
nodes into one PostgreSQL database, the spec's folder shipped to the nodes, GPUs and
custom resources honoured, and clear one-line errors for what cannot work."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.cluster._cluster import ROOT, LocalCluster
from tests.cluster.conftest import tuner_cli

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

# Reports where it ran: the Ray node, whether its own file is Ray's copy of the spec's
# folder, and the GPUs Ray gave it.
OBJECTIVE = """
import os
import time

import ray

import tuner


def objective(config):
    node = ray.get_runtime_context().get_node_id()
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    for step in range(1, 4):
        time.sleep(config.get("sleep", 0.3))
        tuner.report(
            step=step,
            loss=(config["x"] - 0.3) ** 2 + 1.0 / step,
            node_tag=int(node[:8], 16),
            shipped=float("runtime_resources" in __file__),
            gpus_seen=float(len([g for g in gpus.split(",") if g])),
        )
"""


def _study_dir(tmp_path: Path, spec: dict) -> tuple[Path, str]:
    """A spec folder holding a module no other folder has, and the spec naming it."""
    module = f"cluster_obj_{secrets.token_hex(4)}"
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / f"{module}.py").write_text(textwrap.dedent(OBJECTIVE))
    spec = {
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": f"{module}:objective", "max_steps": 3},
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        **spec,
    }
    (folder / "study.yaml").write_text(json.dumps(spec))
    return folder, module


def _run(cluster: LocalCluster, storage: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tuner run study/study.yaml` on the cluster, as a user would type it."""
    return tuner_cli(
        "run", "study/study.yaml", "--address", cluster.address, "--storage", storage,
        "--no-progress", env=cluster.env, cwd=cwd,
    )  # fmt: skip


def _export(name: str, storage: str, env: dict[str, str], cwd: Path) -> list[dict]:
    out = tuner_cli("export", name, "--format", "json", "--storage", storage, env=env, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_trials_spread_over_the_nodes_into_postgres_with_the_module_shipped(
    cluster: LocalCluster, pg_storage: str, tmp_path: Path
) -> None:
    _folder, _ = _study_dir(
        tmp_path,
        {
            "name": "spread",
            # Long enough that Ray Tune (which starts about a trial a second) has all
            # four in flight at once, on more than the head's one CPU.
            "search_space": {
                "x": {"type": "float", "low": 0.0, "high": 1.0},
                "sleep": {"type": "float", "values": [1.0]},
            },
            "search": {"algorithm": "random", "num_trials": 8, "max_concurrent": 4},
            "resources": {"cpus_per_trial": 1},
        },
    )
    run = _run(cluster, pg_storage, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    trials = _export("spread", pg_storage, cluster.env, tmp_path)
    assert len(trials) == 8 and all(t["state"] == "completed" for t in trials)
    # Each trial records the Ray node it ran on (host, IP, node id): the node the
    # objective itself saw, and at least two distinct ones.
    for t in trials:
        assert t["node"].endswith(f"(127.0.0.1, node {int(t['metrics']['node_tag']):08x})")
    nodes = {t["node"] for t in trials}
    assert len(nodes) >= 2, f"all trials ran on one node: {nodes}"
    # Imported from Ray's copy of the spec's folder on every node, never from the folder.
    assert all(t["metrics"]["shipped"] == 1.0 for t in trials)


def test_gpu_trials_take_a_gpu_each_and_never_more_run_than_gpus(
    cluster: LocalCluster, pg_storage: str, tmp_path: Path
) -> None:
    _folder, _ = _study_dir(
        tmp_path,
        {
            "name": "gpus",
            "search": {"algorithm": "random", "num_trials": 6, "max_concurrent": 6},
            "resources": {"cpus_per_trial": 0.25, "gpus_per_trial": 1},
        },
    )
    run = _run(cluster, pg_storage, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    trials = _export("gpus", pg_storage, cluster.env, tmp_path)
    assert len(trials) == 6 and all(t["state"] == "completed" for t in trials)
    assert all(t["metrics"]["gpus_seen"] == 1.0 for t in trials)  # CUDA_VISIBLE_DEVICES
    assert len({t["metrics"]["node_tag"] for t in trials}) == 1  # the one node with GPUs
    # Never three at once on a node with 2 GPUs: count overlaps of [started, ended].
    spans = []
    for t in trials:
        start = datetime.fromisoformat(t["started"]).timestamp()
        spans.append((start, start + t["duration_s"]))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    assert most <= 2


def test_more_gpus_than_any_node_has_is_one_line(
    cluster: LocalCluster, pg_storage: str, tmp_path: Path
) -> None:
    _study_dir(
        tmp_path,
        {"name": "too-many", "resources": {"gpus_per_trial": 3, "custom": {"accel_x": 1}}},
    )
    started = time.monotonic()
    run = _run(cluster, pg_storage, tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "GPU 3" in lines[0] and "GPU 2" in lines[0], run.stderr
    assert time.monotonic() - started < 60


def test_a_wrong_token_is_one_line(cluster: LocalCluster, tmp_path: Path) -> None:
    _study_dir(tmp_path, {"name": "wrong-token"})
    env = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 32}
    started = time.monotonic()
    run = tuner_cli(
        "run", "study/study.yaml", "--address", cluster.address,
        "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--no-progress", env=env, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "token" in lines[0].lower(), run.stderr
    assert time.monotonic() - started < 60


def test_an_unreachable_address_is_one_line(tmp_path: Path) -> None:
    _study_dir(tmp_path, {"name": "nowhere"})
    started = time.monotonic()
    run = tuner_cli(
        "run", "study/study.yaml", "--address", "127.0.0.1:1",
        "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--no-progress",
        env={"RAY_AUTH_MODE": "token", "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0], run.stderr
    assert time.monotonic() - started < 30


def _wait_for_status(name: str, storage: str, want: set[str], timeout_s: float = 240) -> str:
    import tuner

    deadline = time.monotonic() + timeout_s
    status = "missing"
    while time.monotonic() < deadline:
        try:
            status = str(tuner.load_study(name, storage=storage).status)
        except tuner.TunerError:
            status = "missing"
        if status in want:
            return status
        time.sleep(0.25)
    raise AssertionError(f"study {name} is {status}, not {want}, after {timeout_s:.0f} s")


def test_submit_runs_a_study_as_a_ray_job_and_stop_stops_another(
    cluster: LocalCluster, pg_storage: str, tmp_path: Path
) -> None:
    import tuner

    # The README's worked example, examples/cluster/, as a user would submit it.
    shutil.copytree(ROOT / "examples" / "cluster", tmp_path / "cluster")
    sub = tuner_cli(
        "submit", "cluster/study.yaml", "--address", cluster.dashboard_url,
        "--storage", pg_storage, "--name", "submitted", env=cluster.env, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stdout + sub.stderr
    job_id = sub.stdout.strip()
    assert job_id.startswith("tuner-submitted-")
    assert _wait_for_status("submitted", pg_storage, {"completed", "failed"}) == "completed"
    trials = tuner.load_study("submitted", storage=pg_storage).trials()
    assert len(trials) == 8 and all(t.state in ("completed", "pruned") for t in trials)
    assert max(t.value for t in trials if t.value is not None) > 0.9  # digits, accuracy
    out = tuner_cli(
        "logs", "submitted", "--address", cluster.dashboard_url, env=cluster.env, cwd=tmp_path
    )
    assert out.returncode == 0 and "study submitted: completed" in out.stdout, out.stdout

    # A long study, stopped from here through the database while it runs on the cluster.
    other = tmp_path / "other"
    other.mkdir()
    _study_dir(
        other,
        {
            "name": "to-stop",
            "search_space": {
                "x": {"type": "float", "low": 0.0, "high": 1.0},
                "sleep": {"type": "float", "values": [2.0]},
            },
            "search": {"algorithm": "random", "num_trials": 50, "max_concurrent": 2},
        },
    )
    sub = tuner_cli(
        "submit", "study/study.yaml", "--address", cluster.dashboard_url, "--storage", pg_storage,
        env=cluster.env, cwd=other, timeout=120,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stdout + sub.stderr
    _wait_for_status("to-stop", pg_storage, {"running"})
    stop = tuner_cli("stop", "to-stop", "--storage", pg_storage, env=cluster.env, cwd=other)
    assert stop.returncode == 0, stop.stderr
    assert _wait_for_status("to-stop", pg_storage, {"stopped", "completed"}, 120) == "stopped"
    assert len(tuner.load_study("to-stop", storage=pg_storage).trials()) < 50


def test_submit_with_a_storage_the_cluster_cannot_reach_is_one_line(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    _study_dir(tmp_path, {"name": "local-db"})
    sub = tuner_cli(
        "submit", "study/study.yaml", "--address", cluster.dashboard_url,
        "--storage", f"sqlite:///{tmp_path / 'laptop.db'}", env=cluster.env, cwd=tmp_path,
    )  # fmt: skip
    assert sub.returncode == 2
    lines = sub.stderr.strip().splitlines()
    assert len(lines) == 1 and "cluster cannot reach" in lines[0], sub.stderr
