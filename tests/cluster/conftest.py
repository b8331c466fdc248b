"""A real three-node Ray cluster on this machine, for the whole test session.

head: 1 CPU (and the job server); worker 0: 1 CPU; worker 1: 2 CPUs and 2 logical GPUs.
All on 127.0.0.1, token authentication on with a token of the cluster's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster._cluster import ROOT, LocalCluster, NodeSpec
from tests.conftest import postgres_schema


@pytest.fixture(scope="package")
def cluster() -> Iterator[LocalCluster]:
    # Package scope: torn down after the last cluster test, so its three idle nodes do
    # not share the 2 cores with the rest of the suite.
    with LocalCluster(
        NodeSpec(cpus=1), [NodeSpec(cpus=1), NodeSpec(cpus=2, gpus=2, resources={"accel_x": 2})]
    ) as c:
        yield c


@pytest.fixture
def pg_storage(postgres_url: str) -> Iterator[str]:
    """A fresh schema in the session's PostgreSQL database: the store every node reaches."""
    with postgres_schema(postgres_url, prefix="cluster") as url:
        yield url


def tuner_cli(
    *args: str, env: dict[str, str], cwd: Path | str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the `tuner` CLI of this checkout as a user would, in its own process."""
    full_env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
