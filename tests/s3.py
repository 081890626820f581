"""A real S3 API for the object-store archive: moto's server on an ephemeral 127.0.0.1 port, one per
session (a pytest fixture; it fails the tests that use it when it cannot start, it never skips them)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

KEY_ID, SECRET = "AKIATESTARCHIVE0000", "test-secret-never-shown-0123456789"
_buckets = itertools.count()


@dataclass
class S3Endpoint:
    endpoint: str
    client: Any  # a boto3 S3 client: the tests' own look at the bucket, independent of obstore
    made: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }

    def bucket(self) -> str:
        """A fresh, empty bucket."""
        name = f"archive-{next(_buckets)}"
        self.client.create_bucket(Bucket=name)
        self.made.append(name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(str(o["Key"]) for o in listed)

    def body(self, bucket: str, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def open_uploads(self, bucket: str) -> list[str]:
        return [str(u["Key"]) for u in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    client.list_buckets()  # fails here, loudly, when the server did not come up
    try:
        yield S3Endpoint(endpoint, client)
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """The endpoint, with its AWS_* variables set for code that reads the process environment."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3
