"""ALEPH_MCP_STORE_URL: it selects PostgreSQL for the server and every command, and its password never shows
(doctor, errors, logs, settings); unset, nothing loads psycopg."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from aleph_mcp.cli import main
from aleph_mcp.errors import NotConfigured
from aleph_mcp.redact import scrub_url_secrets, url_without_password
from aleph_mcp.server import create_server
from aleph_mcp.store.factory import open_store
from aleph_mcp.store.pg_schema import MIGRATIONS as PG_MIGRATIONS
from aleph_mcp.store.postgres import PostgresEditStore, StoreUnavailable

from .conftest import make_settings
from .postgres import free_port
from .test_store import make_edit

PASSWORD = "s3cret-Pa55word"


def with_password(url: str, password: str = PASSWORD) -> str:
    """`url` with a password for its user (the test cluster trusts loopback, so any password connects)."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{password}@{host}"


def unreachable() -> str:
    return f"postgresql://aleph:{PASSWORD}@127.0.0.1:{free_port()}/edits"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@db:5432/edits", "postgresql://u:***@db:5432/edits"),
        ("postgresql://u:p%40ss@db/edits?sslmode=require", "postgresql://u:***@db/edits?sslmode=require"),
        (
            "postgresql://u@db/edits?password=pw&sslmode=require",
            "postgresql://u@db/edits?password=***&sslmode=require",
        ),
        ("postgresql://db/edits", "postgresql://db/edits"),
    ],
)
def test_a_store_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert url_without_password(url) == shown


def test_a_drivers_error_is_scrubbed_of_the_password_as_written_and_decoded() -> None:
    url = "postgresql://u:p%40ss@db/edits"
    assert scrub_url_secrets("auth failed for p%40ss / p@ss", url) == "auth failed for *** / ***"


async def test_the_setting_holds_the_url_as_a_secret_and_other_schemes_are_refused(tmp_path: Path) -> None:
    """A set URL never shows in the settings' repr; a wrong scheme is refused, the password not echoed."""
    settings = make_settings(tmp_path, store_url=f"postgresql://u:{PASSWORD}@db/edits")
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert make_settings(tmp_path, store_url="  ").store_url is None
    with pytest.raises(NotConfigured) as refused:
        await open_store(make_settings(tmp_path, store_url=f"mysql://u:{PASSWORD}@db/edits"))
    assert "postgresql://" in str(refused.value) and "u:***@db" in str(refused.value)
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("bad", ["closed port", "bad port"])
async def test_an_unreachable_database_is_a_clear_error_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    caplog.set_level(logging.DEBUG)
    url = unreachable() if bad == "closed port" else f"postgresql://aleph:{PASSWORD}@127.0.0.1:x/edits"
    with pytest.raises(StoreUnavailable) as failed:
        await open_store(make_settings(tmp_path, store_url=url, request_timeout=5))
    message = str(failed.value)
    assert "cannot be reached or used" in message and "aleph:***@127.0.0.1" in message
    assert PASSWORD not in message + caplog.text


async def test_the_server_keeps_its_edits_in_the_configured_database(tmp_path: Path, pg_url: str) -> None:
    """With ALEPH_MCP_STORE_URL set, list_edits reads what another replica wrote to PostgreSQL."""
    other = await PostgresEditStore.open(pg_url)
    await other.add(make_edit(1))
    server = create_server(make_settings(tmp_path, store_url=with_password(pg_url)), providers={})
    async with Client(server) as client:
        listed = await client.call_tool("list_edits", {})
    await other.close()
    assert listed.structured_content is not None
    assert [e["edit_id"] for e in listed.structured_content["edits"]] == ["ed_0001"]
    assert not (tmp_path / "data" / "edits.sqlite3").exists()


def doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> str:
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALEPH_MCP_STORE_URL", url)
    capsys.readouterr()
    main(["doctor", "--json"])
    out, err = capsys.readouterr()
    return out + err


def test_doctor_checks_the_database_version_and_clock_without_showing_the_password(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = doctor(monkeypatch, capsys, tmp_path, with_password(pg_url))
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["store"]["status"] == "ok" and ":***@127.0.0.1" in checks["store"]["detail"]
    assert (
        checks["database schema"]["status"] == "ok"
        and f"version {len(PG_MIGRATIONS)} of {len(PG_MIGRATIONS)}" in checks["database schema"]["detail"]
    )
    assert checks["lease clock"]["status"] == "ok" and "the database's" in checks["lease clock"]["detail"]
    assert PASSWORD not in out


def test_doctor_fails_an_unreachable_database_and_says_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = doctor(monkeypatch, capsys, tmp_path, unreachable())
    report = json.loads(out)
    store = next(c for c in report["checks"] if c["name"] == "store")
    assert report["ok"] is False and store["status"] == "fail" and "ALEPH_MCP_STORE_URL" in store["fix"]
    assert PASSWORD not in out


LAZY = """
import sys, anyio
from aleph_mcp.cli import main
from aleph_mcp.errors import NotConfigured
from aleph_mcp.server import create_server
from aleph_mcp.config import Settings
from aleph_mcp.store.factory import open_store
from aleph_mcp.store.pg_schema import MIGRATIONS as PG_MIGRATIONS

async def run():
    store = await open_store(Settings(_env_file=None, data_dir=sys.argv[1]))
    await store.close()

anyio.run(run)
print("psycopg" in sys.modules)
"""


def test_the_embedded_default_never_loads_psycopg(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LAZY, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"
    assert (tmp_path / "data" / "edits.sqlite3").is_file()


async def test_a_waiting_status_call_on_one_replica_returns_when_another_ends_the_edit(
    tmp_path: Path, pg_url: str
) -> None:
    """Two servers on one database: get_edit_status(wait_seconds=20) on B answers within a second of A's
    write (B's listener, not a poll of the store, wakes it)."""
    writer = await PostgresEditStore.open(pg_url)
    await writer.add(make_edit(1, status="running", provider_task_id="t", updated_at=time.time()))
    servers = [
        create_server(make_settings(tmp_path / name, store_url=pg_url), providers={}) for name in ("a", "b")
    ]
    async with Client(servers[0]) as a, Client(servers[1]) as b, anyio.create_task_group() as tg:
        answer: dict[str, Any] = {}

        async def wait_on_b() -> None:
            result = await b.call_tool("get_edit_status", {"edit_id": "ed_0001", "wait_seconds": 20})
            answer.update(result.structured_content or {}, at=time.monotonic())

        tg.start_soon(wait_on_b)
        await anyio.sleep(0.5)  # B is waiting
        listed = await a.call_tool("list_edits", {})  # A serves the same edits
        assert listed.structured_content is not None and len(listed.structured_content["edits"]) == 1
        edit = await writer.get("ed_0001")
        assert edit is not None
        edit.fail("provider_failed", "the render failed", time.time())
        written = time.monotonic()
        await writer.save(edit)
        with anyio.fail_after(5):
            while not answer:
                await anyio.sleep(0.01)
    await writer.close()
    assert answer["status"] == "failed"
    assert answer["at"] - written < 1.0


def test_the_command_line_lists_and_follows_edits_in_the_database(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list` and `status --wait` open the configured database (through the same factory as the server)."""

    async def seed() -> None:
        store = await PostgresEditStore.open(pg_url)
        await store.add(make_edit(1, status="succeeded", finished_at=1001.0))
        await store.close()

    anyio.run(seed)
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALEPH_MCP_STORE_URL", with_password(pg_url))
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["edit_id"] for e in listed["edits"]] == ["ed_0001"]
    assert main(["status", "ed_0001", "--wait", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "succeeded" and PASSWORD not in out + err


def test_without_a_postgresql_the_database_tests_fail_saying_so(tmp_path: Path) -> None:
    """An unreachable ALEPH_MCP_TEST_POSTGRES_URL: the test errors with the reason, it is not skipped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPH_MCP_")}
    env["ALEPH_MCP_TEST_POSTGRES_URL"] = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    test = "tests/test_store_postgres.py::test_every_edit_field_has_its_column_after_migrating"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "PostgreSQL is needed for these tests" in result.stdout and "unreachable" in result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout
