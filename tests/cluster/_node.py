"""`ray start` for a node of the test cluster, kept on loopback.

Ray maps a node address of 127.0.0.1 to the machine's network address, so that other
machines could reach it; every node of the test cluster is on this machine, and tests
must send nothing beyond 127.0.0.1. Ray's single-machine switch
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, in the nodes' environment) keeps every Ray process
a node starts (dashboard, agents, workers, job drivers) on loopback; but `ray start`
refuses to add a worker node under it. So this process alone turns the switch back on
and keeps loopback addresses as they are, then runs Ray's own CLI:

    python -m tests.cluster._node start --head --node-ip-address=127.0.0.1 ...
"""

from __future__ import annotations

import sys

import ray._private.ray_constants as ray_constants
import ray._private.services as services
from ray._common.network_utils import is_localhost

ray_constants.ENABLE_RAY_CLUSTER = True
_resolve = services.resolve_ip_for_localhost


def _keep_loopback(host: str) -> str:
    return host if is_localhost(host) else _resolve(host)


services.resolve_ip_for_localhost = _keep_loopback

if __name__ == "__main__":
    from ray.scripts.scripts import main

    sys.argv = ["ray", *sys.argv[1:]]
    main()
