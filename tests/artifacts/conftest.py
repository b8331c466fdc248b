"""An S3-compatible server on 127.0.0.1 for the artifact store's tests.

``s3_server`` (module scope) starts moto's server on a free port of 127.0.0.1 and points
the AWS variables at it (endpoint and throwaway credentials) until the module ends;
``s3_root`` is a fresh bucket on it, as the store root ``s3://BUCKET/prefix``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests._optional import require

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """The endpoint URL of an S3-compatible server that only 127.0.0.1 reaches; the
    AWS_* variables name it (AWS_ENDPOINT_URL) while the module runs."""
    server_module = require("moto.server")
    s3fs = require("s3fs")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # fsspec keeps one S3FileSystem per set of options, which holds its endpoint: one
    # from another module's server must not be reused.
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
                mp.setenv(key, value)
            mp.delenv("AWS_PROFILE", raising=False)
            yield endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.fixture
def s3_root(s3_server: str) -> str:
    """A new, empty bucket on the test's S3 server, as ``s3://BUCKET/prefix``."""
    boto3 = require("boto3")
    bucket = f"tuner-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/prefix"
