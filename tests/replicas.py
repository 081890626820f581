"""Three `aleph-mcp serve --http` replicas as child processes on one PostgreSQL and one S3 bucket, each with a
data dir of its own (as on different hosts), signed in with one static token; and the test's own look at the
shared database."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psycopg
from mcp import Client

from .http_server import http_client
from .postgres import Databases
from .s3 import S3Endpoint
from .stdio import server_env
from .test_http_shutdown import free_port, healthy, start

TOKEN = "replica-token-0123456789"


@dataclass
class Replica:
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start(self.env, self.port, self.log)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(self.process.wait)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Replicas:
    members: list[Replica]
    store_url: str
    bucket: str

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.store_url) as conn:
            return list(conn.execute(query, params).fetchall())

    async def healthy(self) -> None:
        async with anyio.create_task_group() as tg:
            for member in self.members:
                tg.start_soon(healthy, member.base)

    def by_pid(self, pid: int) -> Replica:
        (member,) = [m for m in self.members if m.process is not None and m.process.pid == pid]
        return member

    def logs(self) -> str:
        return "\n".join(m.log.read_text(errors="replace") for m in self.members if m.log.exists())

    @asynccontextmanager
    async def clients(self, **options: Any) -> AsyncIterator[list[Client]]:
        """One signed-in SDK client per replica."""
        async with AsyncExitStack() as stack:
            yield [
                await stack.enter_async_context(http_client(m.base, TOKEN, **options)) for m in self.members
            ]


@contextmanager
def replicas(
    tmp_path: Path, origin: str, databases: Databases, s3: S3Endpoint, **settings: str
) -> Iterator[Replicas]:
    """Three replicas on a fresh database and bucket, started (not yet healthy); stopped on exit."""
    url = databases.fresh()
    bucket = s3.bucket()
    members = []
    for n in range(3):
        env = server_env(origin, tmp_path / f"host-{n}", "runway") | s3.env
        env |= {
            "ALEPH_MCP_HTTP_TOKENS": f"team={TOKEN}",
            "ALEPH_MCP_STORE_URL": url,
            "ALEPH_MCP_ARCHIVE_URL": f"s3://{bucket}/videos",
            "ALEPH_MCP_REQUEST_TIMEOUT": "1",  # a 4 s lease: a killed replica's edits come round soon
            "ALEPH_MCP_POLL_CONCURRENCY": "16",
            "ALEPH_MCP_POLL_REQUESTS_PER_SECOND": "500",
        }
        members.append(Replica(env | settings, free_port(), tmp_path / f"replica-{n}.log"))
    group = Replicas(members, url, bucket)
    try:
        for member in members:
            member.start()
        yield group
    finally:
        for member in members:
            member.stop()
        databases.give_back(url)
