"""A paid task is never lost: the store knows a create is leaving before it leaves; a task id the store cannot
take is journaled, named in the tool error and recovered on the next start, never sent again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aleph_mcp.config import Settings
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.models import Edit
from aleph_mcp.pricing.budget import Budget
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore
from aleph_mcp.store.base import Claim

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway

VIDEO = "https://cdn.example.com/in/clip.mp4"
BASE = "http://fake.invalid"


class FullDisk(SQLiteEditStore):
    """The disk fills right after the provider accepts the create: every save with a task id fails."""

    async def save(self, edit: Edit) -> None:
        if edit.provider_task_id is not None:
            raise sqlite3.OperationalError("database or disk is full")
        await super().save(edit)


def server_for(
    tmp_path: Path, http: httpx2.AsyncClient, store: SQLiteEditStore
) -> tuple[MCPServer[Any], Settings]:
    settings = make_settings(
        tmp_path,
        default_provider="runway",
        runway_api_key=TEST_KEY,
        runway_base_url=BASE,
        probe_urls=False,
    )
    provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
    return create_server(settings, providers={"runway": provider}, store=store, http=http), settings


async def test_a_task_id_the_full_disk_refuses_is_journaled_named_and_recovered_without_resending(
    tmp_path: Path,
) -> None:
    """The tool error names the task, the journal holds it, the next start follows it: one create only."""
    fake = FakeRunway(TEST_KEY, steps=("running", "succeeded"))
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        full = FullDisk(tmp_path / "data" / "edits.sqlite3")
        server, settings = server_for(tmp_path, http, full)
        async with Client(server) as client:
            result = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        await full.close()
        (task_id,) = fake.tasks
        assert result.is_error and task_id in result.content[0].text  # type: ignore[union-attr]
        assert "Do not submit it again" in result.content[0].text  # type: ignore[union-attr]
        journal = settings.data_dir / "task-journal.jsonl"
        (line,) = journal.read_text().splitlines()
        entry = json.loads(line)
        assert (
            entry["task_id"] == task_id
            and entry["provider"] == "runway"
            and set(entry)
            == {
                "edit_id",
                "provider",
                "task_id",
                "time",
            }
        )
        assert TEST_KEY not in journal.read_text()

        store = SQLiteEditStore(settings.store_path)
        server, _ = server_for(tmp_path, http, store)
        async with Client(server) as client:
            with anyio.fail_after(20):
                while True:
                    status = await client.call_tool(
                        "get_edit_status", {"edit_id": entry["edit_id"], "wait_seconds": 1}
                    )
                    record = status.structured_content
                    assert record is not None
                    if record["status"] in ("succeeded", "failed"):
                        break
        await store.close()
    assert record["status"] == "succeeded" and record["provider_task_id"] == task_id
    assert len(fake.creates) == 1
    assert not journal.exists()


def unsent(create_sent_at: float | None) -> Edit:
    return Edit("ed_1", "runway", "aleph2", "snow", VIDEO, next_poll_at=0.0, create_sent_at=create_sent_at)


async def poll(tmp_path: Path, edit: Edit) -> Edit:
    store = InMemoryEditStore()
    await store.add(edit)
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(599))) as http:
        providers = {"runway": RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)}
        poller = Poller(
            store, providers, LocalArchive(tmp_path / "archive"), http, owner="p", policy=PollPolicy()
        )
        await poller.poll_once()
    found = await store.get(edit.edit_id)
    assert found is not None
    return found


async def test_an_edit_whose_create_never_left_is_failed_as_not_sent_and_costs_nothing(
    tmp_path: Path,
) -> None:
    """A crash while checking or uploading (no create_sent_at, no task id): not_sent, outside the budget."""
    done = await poll(tmp_path, unsent(None))
    assert done.status == "failed" and done.error_code == "not_sent"
    assert "Nothing was sent or billed" in (done.error_message or "")
    assert Budget(usd=1.0, edits=1, prices={}).counts(done) is False


async def test_an_edit_whose_create_left_without_an_answer_stays_outcome_unknown_and_counts(
    tmp_path: Path,
) -> None:
    """A crash after create_sent_at: the create may have arrived, so it counts against the budget."""
    done = await poll(tmp_path, unsent(1.0))
    assert done.status == "failed" and done.error_code == "submit_outcome_unknown"
    assert Budget(usd=1.0, edits=1, prices={}).counts(done) is True


async def test_a_store_that_cannot_record_the_send_sends_nothing(tmp_path: Path) -> None:
    """When even `create_sent_at` cannot be stored, no create leaves the process."""

    class Unwritable(SQLiteEditStore):
        async def save(self, edit: Edit) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        async def claim_create(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim:
            raise sqlite3.OperationalError("database or disk is full")  # where create_sent_at is written

    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        store = Unwritable(tmp_path / "data" / "edits.sqlite3")
        server, _ = server_for(tmp_path, http, store)
        async with Client(server) as client:
            result = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        await store.close()
    assert result.is_error and "was not sent" in result.content[0].text  # type: ignore[union-attr]
    assert fake.creates == []
