"""A real multi-node Ray cluster on this machine, for tests and benches.

``ray start --head`` plus ``ray start --address`` worker nodes, each its own raylet with
its own logical CPUs (and GPUs or custom resources where asked), all on 127.0.0.1, with
token authentication on (Ray 2.60's default) and a token of the cluster's own.

Every node is a ``ray start --block`` process in a process group of its own: stopping
the cluster signals those groups only, never processes found by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now and never handed out before in this process: the OS may
    give a just-closed port again, and two of a node's components on one port stop the
    node (Ray: "trying to use a port number ... that is used by other components")."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class NodeSpec:
    """One node: its logical CPUs, GPUs and custom resources."""

    cpus: int = 1
    gpus: int = 0
    resources: dict[str, float] = field(default_factory=dict)


@dataclass
class Node:
    spec: NodeSpec
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class LocalCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager).

    Attributes:
        address: the GCS address, ``127.0.0.1:PORT``.
        dashboard_url: the head's dashboard and job server, ``http://127.0.0.1:PORT``.
        env: the environment a driver needs to join (token auth on, the cluster's token).
    """

    def __init__(
        self,
        head: NodeSpec,
        workers: list[NodeSpec],
        *,
        dashboard: bool = True,
        node_env: dict[str, str] | None = None,
    ) -> None:
        self.head_spec = head
        self.worker_specs = workers
        self.dashboard = dashboard
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.dashboard_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="tuner-cluster-"))
        self.nodes: list[Node] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            # A job's entrypoint runs `python`: this one, with tuner installed.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
        self.node_env = dict(node_env or {})  # Ray settings for the nodes only

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout_s: float = 180) -> LocalCluster:
        deadline = time.monotonic() + timeout_s
        head_args = [
            "--head", f"--port={self.port}",
            f"--include-dashboard={'true' if self.dashboard else 'false'}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
            f"--temp-dir={self.tmp / 'ray'}",
        ]  # fmt: skip
        self._start_node(self.head_spec, head_args, "head", deadline)
        for i, spec in enumerate(self.worker_specs):
            # One at a time: nodes starting together on one machine race for the
            # names of their sockets in the session folder.
            self._start_node(spec, [f"--address={self.address}"], f"worker{i}", deadline)
        return self

    def stop(self) -> None:
        """SIGTERM every node's process group (workers first), SIGKILL what remains."""
        for node in reversed(self.nodes):
            self._signal(node, signal.SIGTERM)
        # `ray start --block` stops its node on SIGTERM in a few seconds when idle; one
        # still busy after 10 s is killed (its whole process group) below.
        deadline = time.monotonic() + 10
        for node in reversed(self.nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for node in self.nodes:
            self._signal(node, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=10)
        self.nodes.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)  # Ray's session folder and the logs

    def kill_node(self, index: int) -> None:
        """SIGKILL worker node `index` (0-based among the workers): its raylet and
        everything it started, as when a machine dies."""
        node = self.nodes[1 + index]
        self._signal(node, signal.SIGKILL)
        node.proc.wait(timeout=10)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------

    def _start_node(self, spec: NodeSpec, args: list[str], name: str, deadline: float) -> None:
        log = self.tmp / f"{name}.log"
        argv = [
            sys.executable, "-m", "tests.cluster._node", "start", "--block",
            "--node-ip-address=127.0.0.1", "--disable-usage-stats",
            f"--num-cpus={spec.cpus}", f"--num-gpus={spec.gpus}",
            # Fixed defaults would collide between nodes of one machine.
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            *args,
        ]  # fmt: skip
        if spec.resources:
            argv.append(f"--resources={json.dumps(spec.resources)}")
        env = {
            **self.env,
            **self.node_env,
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # see tests/cluster/_node.py
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        node = Node(spec, proc, log)
        self.nodes.append(node)
        while time.monotonic() < deadline:
            if not node.alive:
                raise RuntimeError(f"ray node {name} exited: {log.read_text()[-3000:]}")
            if b"Ray runtime started" in log.read_bytes():
                return
            time.sleep(0.3)
        raise RuntimeError(f"ray node {name} did not start in time: {log.read_text()[-3000:]}")

    @staticmethod
    def _signal(node: Node, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(node.proc.pid, sig)
