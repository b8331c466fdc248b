"""`tuner submit` and `tuner logs`: a study's driver as a Ray job on a cluster.

The spec's folder is uploaded with the job (Ray's runtime_env working_dir, less
:data:`tuner._ray.SHIP_EXCLUDES`), and the job runs ``tuner run`` on the head node
against the study's database. That database must be a server that the cluster and this
machine both reach (PostgreSQL): `tuner list`, `tuner stop` and the dashboard then work
from any machine that reaches it. Ray's job client is in ``ray[default]``
(``pip install 'tuner[cluster]'``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tuner._ray import shipped
from tuner.exceptions import ClusterError, StudyExistsError, StudyNotFoundError, TunerError
from tuner.spec import load_spec
from tuner.storage import Storage
from tuner.study import resolve_storage_url

__all__ = ["JOB_STUDY_KEY", "job_address", "logs", "submit", "wait"]

JOB_STUDY_KEY = "tuner_study"  # the job's metadata naming its study
ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"  # Ray's own variable for the job server's URL


def job_address(address: str | None) -> str:
    """The job server's URL: `address`, else $RAY_API_SERVER_ADDRESS.

    Raises:
        ClusterError: neither is set.
    """
    found = address or os.environ.get(ADDRESS_ENV)
    if not found:
        raise ClusterError(
            f"which cluster? give --address http://HEAD:8265 (the head node's job server) "
            f"or set {ADDRESS_ENV}"
        )
    return found


def submit(
    spec_path: Path, address: str | None, storage: str | None, overrides: Mapping[str, Any]
) -> tuple[str, str]:
    """Submit a study's driver as a Ray job; returns (study name, job id).

    Raises:
        SpecError: the spec is invalid, or its folder is too large to upload.
        StorageError: the database cannot be reached from here, or the study exists.
        ClusterError: the storage is one the cluster cannot reach (SQLite), or the job
            server cannot be reached.
    """
    spec = load_spec(spec_path, overrides)
    url = resolve_storage_url(storage, spec)
    server = job_address(address)
    _check_shared(url, server)
    with Storage(url) as db:  # reachable from here, and the name is free
        try:
            db.get_study(spec.name)
        except StudyNotFoundError:
            pass
        else:
            raise StudyExistsError(
                f"study {spec.name!r} already exists in {db.url}: pick another with "
                f"--name, or `tuner resume {spec.name}` / `tuner delete {spec.name}`"
            )
    folder = str(Path(spec_path).resolve().parent)
    runtime_env: dict[str, Any] = shipped(folder)
    # The URL goes by environment, not on the command line that Ray shows.
    runtime_env["env_vars"] = {**runtime_env["env_vars"], "TUNER_STORAGE": url}
    argv = ["--no-progress", "--address", "auto"]
    for flag, key in (("--name", "name"), ("--num-trials", "search.num_trials")):
        if overrides.get(key) is not None:
            argv += [flag, str(overrides[key])]
    # Ray may remove the job's folder (its copy of the spec's) while the job runs, once
    # trials that shared it end: the driver runs from the temp folder instead, having
    # read the spec. $TUNER_STORAGE is expanded by the job's shell, so the URL is not in
    # the entrypoint that Ray lists.
    spec_in_job = '"$JOB_DIR"/' + shlex.quote(Path(spec_path).name)
    entrypoint = (
        f'JOB_DIR="$PWD" && cd "${{TMPDIR:-/tmp}}" && python -m tuner.cli run {spec_in_job} '
        f'{shlex.join(argv)} --storage "$TUNER_STORAGE"'
    )
    client = _client(server)
    job_id = f"tuner-{spec.name}-{secrets.token_hex(3)}"
    try:
        client.submit_job(
            entrypoint=entrypoint,
            submission_id=job_id,
            runtime_env=runtime_env,
            metadata={JOB_STUDY_KEY: spec.name},
        )
    except Exception as e:  # the job client raises RuntimeError and requests' errors
        raise ClusterError(f"the job server at {server} refused the study: {_line(e)}") from None
    return spec.name, job_id


def logs(name: str, address: str | None, *, follow: bool) -> int:
    """Print the driver output of the latest job that ran study `name`.

    Returns:
        With `follow`, the exit status the job ended with (0 done, 1 failed); else 0.

    Raises:
        ClusterError: no job of that study on the cluster, or the server is unreachable.
    """
    server = job_address(address)
    client = _client(server)
    try:
        jobs = [j for j in client.list_jobs() if (j.metadata or {}).get(JOB_STUDY_KEY) == name]
    except Exception as e:
        raise ClusterError(f"cannot list the jobs at {server}: {_line(e)}") from None
    if not jobs:
        raise ClusterError(f"no job of study {name!r} on the cluster at {server}")
    job = max(jobs, key=lambda j: j.start_time or 0)
    assert job.submission_id is not None
    if not follow:
        sys.stdout.write(client.get_job_logs(job.submission_id))
        return 0
    return wait(job.submission_id, server, stream=True)


def wait(job_id: str, address: str, *, stream: bool) -> int:
    """Wait for a job to end (printing its output as it comes with `stream`); returns
    0 when it succeeded, 1 when it failed or was stopped."""
    client = _client(address)
    if stream:

        async def tail() -> None:
            async for chunk in client.tail_job_logs(job_id):
                sys.stdout.write(chunk)
                sys.stdout.flush()

        asyncio.run(tail())
    while True:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return 0 if status == "SUCCEEDED" else 1
        time.sleep(1)


def _client(address: str) -> Any:
    # Ray's job client logs each upload at INFO: tuner prints what matters itself.
    logging.getLogger("ray").setLevel(logging.WARNING)
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise TunerError(
            "submitting to a cluster needs Ray's job client: pip install 'tuner[cluster]'"
        ) from None
    try:
        return JobSubmissionClient(address)
    except Exception as e:
        raise ClusterError(
            f"cannot reach the job server at {address} ({_line(e)}): give the head node's "
            "dashboard address, http://HEAD:8265, and check RAY_AUTH_TOKEN"
        ) from None


def _check_shared(url: str, server: str) -> None:
    """A submitted study's database must be a server the cluster reaches too."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        raise ClusterError(
            f"{url} is a file on this machine, which the cluster cannot reach: submit with "
            "a database server that both reach, e.g. --storage postgresql://user@db-host/tuner"
        )
    host = parsed.host or "localhost"
    server_host = make_url(f"http://{server.split('://', 1)[-1]}").host or ""
    if _is_local(host) and not _is_local(server_host):
        raise ClusterError(
            f"the storage host {host} is this machine as the cluster sees itself: give the "
            "database's address that the cluster's nodes reach"
        )


def _is_local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _line(e: Exception) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__
