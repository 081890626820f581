"""A throwaway PostgreSQL for the tests and benchmarks: `initdb` + `pg_ctl` in a temp dir, on a free loopback
port, torn down at the end.

`ALEPH_MCP_TEST_POSTGRES_URL` (a server URL whose user may CREATE DATABASE) is used instead when set. As root
the cluster runs as the `postgres` system user (the server refuses to run as root). No PostgreSQL at all is an
error that says so: these tests are never skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

PRESET = os.environ.get("ALEPH_MCP_TEST_POSTGRES_URL", "").strip()  # read at import: tests clear ALEPH_MCP_*
TEMPLATE = "aleph_template"
# Durability off: a test cluster is thrown away, and fsyncs would dominate its time on a shared machine.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be had for the tests."""


def binaries() -> Path | None:
    """The newest Debian PostgreSQL bin dir, else the folder of `initdb` on PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` system user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A fresh cluster; yields its superuser URL on 127.0.0.1. Stopped and deleted on exit."""
    bin_dir = binaries()
    if bin_dir is None:
        raise NoPostgres(
            "No PostgreSQL binaries (initdb, pg_ctl) found in /usr/lib/postgresql/*/bin or on PATH: install "
            "PostgreSQL (apt-get install -y postgresql) or set ALEPH_MCP_TEST_POSTGRES_URL."
        )
    root = Path(tempfile.mkdtemp(prefix="aleph-pg-"))
    data = root / "data"
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "--no-sync"], "initdb")
        for attempt in itertools.count():
            port = free_port()
            options = f"{FAST} -c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
            start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options]
            try:
                _run([*start, "-w", "-t", "60", "start"], "pg_ctl start")
                started = True
                break
            except NoPostgres:
                if attempt >= 2:  # the port was taken between the probe and the start, three times
                    raise
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NoPostgres(
            f"{what} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
        )


def database_url(server: str, name: str) -> str:
    """`server`'s URL with the database `name` instead of its own."""
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


@dataclass
class Databases:
    """Hands out fresh databases on one server: each a copy of an empty template (fast, and independent)."""

    server: str
    _admin: psycopg.Connection[tuple[object, ...]] = field(init=False)
    _names: Iterator[int] = field(default_factory=itertools.count)
    _returned: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._admin = psycopg.connect(self.server, autocommit=True)
        self._prefix = f"aleph_t{os.getpid()}_"
        self._drop(TEMPLATE + f"_{os.getpid()}")
        self.template = TEMPLATE + f"_{os.getpid()}"
        self._admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(self.template))
        )

    def fresh(self) -> str:
        """The URL of an empty database no other test uses: one given back and wiped (`give_back`), else a
        new one. Wiping takes a tenth of the time of CREATE DATABASE, which checkpoints twice."""
        if self._returned:
            return database_url(self.server, self._returned.pop())
        name = f"{self._prefix}{next(self._names)}"
        self._admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
        )
        return database_url(self.server, name)

    def give_back(self, url: str) -> None:
        """`url`'s database, emptied for the next test: its connections ended (listeners, leaked pools and
        their session locks with them) and its schema dropped and made again, as in a new database."""
        name = url.rpartition("/")[2]
        self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        self._returned.append(name)

    def _drop(self, name: str) -> None:
        self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        """Drop every database handed out (a preset server is left as it was found) and the template."""
        rows = self._admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [self._prefix + "%"]
        ).fetchall()
        for (name,) in rows:
            self._drop(str(name))
        self._drop(self.template)
        self._admin.close()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The preset server (ALEPH_MCP_TEST_POSTGRES_URL) or a throwaway cluster of our own."""
    if PRESET:
        try:
            psycopg.connect(PRESET, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise NoPostgres(f"ALEPH_MCP_TEST_POSTGRES_URL is set but unreachable: {exc}") from None
        yield PRESET
        return
    with throwaway_cluster() as url:
        yield url
