"""Shared fixtures: settings in a temp data dir, real sample clips."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aleph_mcp.config import Settings

from .media import make_clip
from .postgres import Databases, NoPostgres, postgres_server
from .s3 import s3, s3_env  # noqa: F401  (fixtures)

TEST_KEY = "test-key-0123456789"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings that ignore the developer's environment and .env file."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "allowed_dirs": str(tmp_path / "inputs"),
        "poll_interval": 0.05,
        "poll_max_interval": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    """One PostgreSQL for the session (ALEPH_MCP_TEST_POSTGRES_URL, or a throwaway cluster started here),
    started on first use. Without one the PostgreSQL tests fail, saying why: they are never skipped."""
    try:
        with postgres_server() as server:
            databases = Databases(server)
            try:
                yield databases
            finally:
                databases.close()
    except NoPostgres as exc:
        pytest.fail(f"PostgreSQL is needed for these tests and none could be had: {exc}", pytrace=False)


@pytest.fixture
def pg_url(postgres_databases: Databases) -> Iterator[str]:
    """The URL of an empty database of its own for this test (wiped and reused by a later one)."""
    url = postgres_databases.fresh()
    yield url
    postgres_databases.give_back(url)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def clip(inputs: Path) -> Path:
    return make_clip(inputs / "clip.mp4")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys or overrides in the developer's shell must not leak into tests."""
    import os

    for name in list(os.environ):
        if name.startswith("ALEPH_MCP_") or name in (
            "KIE_API_KEY",
            "AIMLAPI_API_KEY",
            "CRUN_API_KEY",
            "KREA_API_KEY",
            "RUNWAYML_API_SECRET",
        ):
            monkeypatch.delenv(name)
    # The developer's own aleph-mcp.env (user config dir) must not reach tests either.
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent/aleph-mcp-tests")


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) in LOOPBACK_NAMES


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches beyond loopback: a connect or DNS lookup elsewhere fails the test loudly."""
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def refuse(address: object) -> None:
        raise OSError(f"tests never leave loopback; something tried to reach {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
