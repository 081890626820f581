"""ALEPH_MCP_CONFIRM_ABOVE_USD: edit_video asks the person through elicitation on both protocol eras, refuses
when the client cannot ask unless confirm=true, and sends nothing when the person declines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.client import ClientRequestContext

from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway

VIDEO = "https://cdn.example.com/in/clip.mp4"
GEN4 = {"prompt": "make it snow", "video": VIDEO, "model": "gen4_aleph"}  # quoted $0.75 (5 s × $0.15/s)
ERAS = ["auto", "legacy"]  # 2026-07-28 (input_required round trip) and the 2025 handshake (mid-call request)


class Person:
    """An elicitation callback that answers like a person would, and remembers what it was asked."""

    def __init__(self, action: str = "accept", content: dict[str, Any] | None = None) -> None:
        self.action, self.content = action, content if content is not None else {"confirm": True}
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        self.asked.append(params)
        if self.action == "accept":
            return types.ElicitResult(action="accept", content=self.content)
        return types.ElicitResult(action=self.action)


@asynccontextmanager
async def served(
    tmp_path: Path, mode: str, person: Person | None = None, **settings: Any
) -> AsyncIterator[tuple[Client, FakeRunway]]:
    """A runway-backed server that asks above $0.50, and a client that can (or cannot) be asked."""
    fake = FakeRunway(TEST_KEY)
    values: dict[str, Any] = {"confirm_above_usd": 0.5, "probe_urls": False, **settings}
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        config = make_settings(tmp_path, default_provider="runway", runway_api_key=TEST_KEY, **values)
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url="http://fake.invalid")
        server = create_server(config, providers={"runway": provider}, store=InMemoryEditStore(), http=http)
        async with Client(server, mode=mode, elicitation_callback=person) as client:
            yield client, fake


async def no_edits(client: Client) -> bool:
    listed = await client.call_tool("list_edits", {})
    record = listed.structured_content
    return isinstance(record, dict) and record == {"edits": [], "next_cursor": None}


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", ERAS)
async def test_an_edit_above_the_threshold_starts_once_the_person_accepts(tmp_path: Path, mode: str) -> None:
    """The form shows the quote, provider and prompt; accepting starts exactly one edit."""
    person = Person()
    async with served(tmp_path, mode, person) as (client, fake):
        result = await client.call_tool("edit_video", GEN4)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None and result.structured_content["status"] == "queued"
    (asked,) = person.asked
    assert isinstance(asked, types.ElicitRequestFormParams)
    assert "runway/gen4_aleph" in asked.message and "$0.75" in asked.message
    assert "'make it snow'" in asked.message and "$0.50" in asked.message
    assert asked.requested_schema["properties"]["confirm"]["type"] == "boolean"
    assert len(fake.creates) == 1


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("answer", ["decline", "cancel", "unchecked"])
async def test_declining_sends_nothing_and_stores_nothing(tmp_path: Path, mode: str, answer: str) -> None:
    """Decline, dismiss, or accept with the box unchecked: a tool error, no request, no edit."""
    person = Person("accept", {"confirm": False}) if answer == "unchecked" else Person(answer)
    async with served(tmp_path, mode, person) as (client, fake):
        result = await client.call_tool("edit_video", GEN4)
        assert result.is_error and "the person declined this edit" in text_of(result)
        assert await no_edits(client)
    assert len(person.asked) == 1
    assert fake.requests == []


@pytest.mark.parametrize("mode", ERAS)
async def test_a_client_that_cannot_be_asked_is_refused_unless_it_confirms(tmp_path: Path, mode: str) -> None:
    """Without elicitation the call is refused with how to proceed; confirm=true then starts the edit."""
    async with served(tmp_path, mode) as (client, fake):
        refused = await client.call_tool("edit_video", GEN4)
        assert refused.is_error
        message = text_of(refused)
        assert "cannot ask them" in message and "confirm=true" in message and "$0.75" in message
        assert fake.requests == [] and await no_edits(client)
        confirmed = await client.call_tool("edit_video", {**GEN4, "confirm": True})
        assert not confirmed.is_error, text_of(confirmed)
    assert len(fake.creates) == 1


@pytest.mark.parametrize("mode", ERAS)
async def test_confirm_true_does_not_skip_the_question_on_a_client_that_can_be_asked(
    tmp_path: Path, mode: str
) -> None:
    """The agent's confirm=true is not the person's answer: they are asked, and their decline stands."""
    person = Person("decline")
    async with served(tmp_path, mode, person) as (client, fake):
        result = await client.call_tool("edit_video", {**GEN4, "confirm": True})
        assert result.is_error and "the person declined this edit" in text_of(result)
    assert len(person.asked) == 1 and fake.requests == []


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("retry", [{"confirm": True}, {}])
async def test_after_a_decline_the_same_request_is_refused_without_asking_again(
    tmp_path: Path, mode: str, retry: dict[str, Any]
) -> None:
    """A decline is final for that request: sent again (with or without confirm=true) it is refused."""
    person = Person("decline")
    async with served(tmp_path, mode, person) as (client, fake):
        await client.call_tool("edit_video", GEN4)
        again = await client.call_tool("edit_video", {**GEN4, **retry})
        assert again.is_error and "declined this same edit" in text_of(again)
        assert await no_edits(client)
        other = await client.call_tool("edit_video", {**GEN4, "prompt": "make it rain"})
        assert "the person declined this edit" in text_of(other)  # another request is asked about
    assert len(person.asked) == 2 and fake.requests == []


@pytest.mark.parametrize("mode", ERAS)
async def test_confirm_true_is_refused_too_when_the_operator_requires_the_person(
    tmp_path: Path, mode: str
) -> None:
    """ALEPH_MCP_CONFIRM_REQUIRES_PERSON: a client that cannot ask gets no way around the question."""
    async with served(tmp_path, mode, confirm_requires_person=True) as (client, fake):
        result = await client.call_tool("edit_video", {**GEN4, "confirm": True})
        assert result.is_error and "ALEPH_MCP_CONFIRM_REQUIRES_PERSON" in text_of(result)
    assert fake.requests == []


async def test_a_decline_is_kept_in_the_sqlite_file_for_every_process(tmp_path: Path) -> None:
    """Two stores on one file: a decline recorded by one is seen by the other, within its window only."""
    first, second = (SQLiteEditStore(tmp_path / "edits.sqlite3") for _ in range(2))
    await first.record_decline("f" * 64, at=1000.0)
    assert await second.declined_since("f" * 64, since=400.0) == 1000.0
    assert await second.declined_since("f" * 64, since=1000.5) is None
    assert await second.declined_since("g" * 64, since=0.0) is None
    await first.close()
    await second.close()


async def test_an_edit_at_or_below_the_threshold_is_not_asked_about(tmp_path: Path) -> None:
    """$0.75 under a $1.00 threshold: the edit starts without a question."""
    person = Person("decline")
    async with served(tmp_path, "legacy", person, confirm_above_usd=1.0) as (client, fake):
        result = await client.call_tool("edit_video", GEN4)
        assert not result.is_error, text_of(result)
    assert person.asked == [] and len(fake.creates) == 1


@pytest.mark.parametrize("mode", ERAS)
async def test_an_edit_of_unknown_cost_is_asked_about(tmp_path: Path, mode: str) -> None:
    """runway/aleph2 has no known price: with a threshold set, the person is asked, and told it is unknown."""
    person = Person("decline")
    async with served(tmp_path, mode, person) as (client, fake):
        result = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
        assert result.is_error
    (asked,) = person.asked
    assert "runway/aleph2: its cost is unknown (no known price for runway/aleph2" in asked.message
    assert fake.requests == []


@pytest.mark.parametrize("mode", ERAS)
async def test_a_dry_run_never_asks(tmp_path: Path, mode: str) -> None:
    """dry_run=true above the threshold: no question, a preview that says a real call would ask."""
    person = Person("decline")
    async with served(tmp_path, mode, person) as (client, fake):
        result = await client.call_tool("edit_video", {**GEN4, "dry_run": True})
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["dry_run"]["needs_confirmation"] is True
    assert person.asked == [] and fake.requests == []


async def test_an_edit_the_budget_refuses_is_not_asked_about(tmp_path: Path) -> None:
    """Asking is pointless when the budget will refuse: the refusal comes without a question."""
    person = Person()
    async with served(tmp_path, "legacy", person, budget_edits=0) as (client, fake):
        result = await client.call_tool("edit_video", GEN4)
        assert result.is_error and "Refused before spending" in text_of(result)
    assert person.asked == [] and fake.requests == []


@pytest.mark.parametrize("mode", ERAS)
async def test_an_accepted_local_file_is_uploaded_and_its_private_copies_are_gone(
    tmp_path: Path, mode: str, clip: Path
) -> None:
    """Asked about a local file (mid-call, or by a retried call): accepted, uploaded once, no copy left."""
    person = Person()
    args = {"prompt": "make it snow", "video": str(clip), "model": "gen4_aleph"}
    async with served(tmp_path, mode, person, confirm_above_usd=0.1) as (client, fake):
        result = await client.call_tool("edit_video", args)
        assert not result.is_error, text_of(result)
    assert len(person.asked) == 1 and len(fake.creates) == 1
    assert [u["content"] for u in fake.uploads] == [clip.read_bytes()]
    assert list((tmp_path / "data" / "inputs").iterdir()) == []
