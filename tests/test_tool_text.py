"""What agents read: every tool, parameter and resource template described; tidy, compact text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from pydantic import ValidationError

from aleph_mcp.models import CHECKED_FIELDS, Edit, EditRecord, StatusRecord
from aleph_mcp.records import record_fields, to_record
from aleph_mcp.server import content, create_server

from .conftest import make_settings
from .media import make_clip

TOOLS_LIST_BUDGET = 14_000  # bytes of the tools/list answer as it goes over the wire (compact JSON); 16 KB
# after chains and trims (issue 17), until the status records' published schemas were trimmed (12.6 KB)


async def test_every_tool_and_parameter_has_a_description_without_stray_indentation(tmp_path: Path) -> None:
    """Descriptions exist, are cleaned of docstring indentation, and name what the tool does."""
    async with Client(create_server(make_settings(tmp_path))) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == {
        "edit_video",
        "get_edit_status",
        "list_edits",
        "cancel_edit",
        "list_providers",
    }
    for tool in tools:
        assert tool.description and tool.title, tool.name
        assert "\n " not in tool.description, f"{tool.name} keeps docstring indentation"
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"


async def test_resource_templates_have_titles_and_the_server_an_icon(tmp_path: Path) -> None:
    """Each resource template is titled, and the server announces an inline icon."""
    async with Client(create_server(make_settings(tmp_path))) as client:
        templates = (await client.list_resource_templates()).resource_templates
        info = client.server_info
    assert len(templates) == 4 and all(t.title and t.description for t in templates)
    assert info is not None and info.icons and info.icons[0].src.startswith("data:image/svg+xml;base64,")


async def test_the_tools_list_answer_stays_under_its_budget(tmp_path: Path) -> None:
    """The whole tools/list answer, as sent, stays under 16 KB: clients read it every session."""
    async with Client(create_server(make_settings(tmp_path))) as client:
        tools = (await client.list_tools()).tools
    wire = json.dumps(
        {"tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]},
        separators=(",", ":"),
    )
    assert len(wire.encode()) < TOOLS_LIST_BUDGET, len(wire.encode())


async def test_watermark_is_offered_by_every_provider_that_draws_it(tmp_path: Path) -> None:
    """The watermark parameter names kie and local, the two providers that draw it."""
    async with Client(create_server(make_settings(tmp_path))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    description = tools["edit_video"].input_schema["properties"]["watermark"]["description"]
    assert "kie" in description and "local" in description


async def test_list_edits_publishes_a_lean_record_schema_and_answers_full_records(tmp_path: Path) -> None:
    """list_edits' item schema (inline, no `$ref`) requires what a record requires and types the fields an
    edit is picked by as the record does; get_edit_status' and cancel_edit's type the fields an agent acts
    on, and name the others in words. Every record returned is a full one (the record's whole schema)."""
    settings = make_settings(tmp_path, allowed_dirs=str(tmp_path))
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    async with Client(create_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        await client.call_tool("edit_video", {"prompt": "invert", "video": str(clip)})
        listed = (await client.call_tool("list_edits", {})).structured_content
        edit_id = (listed or {})["edits"][0]["edit_id"]
        status = (await client.call_tool("get_edit_status", {"edit_id": edit_id})).structured_content
    schema = tools["list_edits"].output_schema
    assert schema is not None and "$ref" not in json.dumps(schema)
    items, full = schema["properties"]["edits"]["items"], EditRecord.model_json_schema()
    assert items["required"] == full["required"] and set(items["properties"]) == {"edit_id", "status"}
    assert all(items["properties"][name] == full["properties"][name] for name in items["properties"])
    for name in ("get_edit_status", "cancel_edit"):
        published = tools[name].output_schema
        assert published is not None and published["required"] == full["required"]
        assert set(published["properties"]) == set(CHECKED_FIELDS) and "provider" in published["description"]
        assert all(published["properties"][f] == full["properties"][f] for f in CHECKED_FIELDS)
    assert listed is not None and len(listed["edits"]) == 1
    for record in (listed["edits"][0], status):
        Draft202012Validator(full).validate(record)
        assert record is not None and set(record) == set(full["properties"])


LISTED = [
    Edit("ed_q", "local", "ffmpeg", "p", "v", created_at=1.5, updated_at=2.0, next_poll_at=9.0),
    Edit(
        "ed_s",
        "runway",
        "gen4_aleph",
        "make it snow",
        "v",
        status="succeeded",
        provider_task_id="t",
        finished_at=3.0,
        local_path="/a/ed_s.mp4",
        thumbnail_path="/a/ed_s.jpg",
        progress=1.0,
        warnings=["cropped"],
        estimated_cost_usd=0.75,
        cost_basis="5 s",
        provider_cost_credits=75.0,
        provider_cost_usd=0.75,
        provider_cost_final=True,
    ),
    Edit("ed_f", "kie", "aleph", "p", "v", status="failed", error_code="timeout", error_message="late"),
    Edit("ed_c", "krea", "aleph", "p", "v", status="cancelled", error_message="by you", notes="n"),
    Edit("ed_z", "runway", "gen4_aleph", "p", "v", provider_cost_credits=0.0, provider_cost_usd=None),
]


@pytest.mark.parametrize("edit", LISTED, ids=[e.edit_id for e in LISTED])
@pytest.mark.parametrize("duplicate", [False, True])
def test_a_listed_record_is_exactly_the_status_record(edit: Edit, duplicate: bool) -> None:
    """list_edits' records, built without a model, are what EditRecord dumps for the same edit."""
    fields = record_fields(edit, now=5.0, poll_interval=4.0, duplicate=duplicate)
    record = to_record(edit, poll_interval=4.0, duplicate=duplicate, now=5.0)
    assert fields == record.model_dump(mode="json")
    assert list(fields) == list(EditRecord.model_fields)


def test_an_inline_still_of_a_local_archive_is_read_once_per_version_of_its_file(tmp_path: Path) -> None:
    """A still in the local archive is read and encoded once and reused until the file changes; a
    vanished file inlines nothing."""
    still = tmp_path / "ed_1.thumb.jpg"
    still.write_bytes(b"first version")
    first, again = content._local_image(still), content._local_image(still)
    still.write_bytes(b"the second, longer version")
    changed = content._local_image(still)
    still.unlink()
    gone = content._local_image(still)
    assert first == b"first version" and first is again  # the cached bytes, not read again
    assert changed == b"the second, longer version" and gone is None
    encoded, reencoded = content._inline_image(first), content._inline_image(again)
    assert encoded is not None and reencoded is not None and encoded.data is reencoded.data


def test_the_lean_status_schema_checks_answers_as_the_whole_record() -> None:
    """What the SDK checks a status answer with before it leaves (StatusRecord) is EditRecord field for
    field: a field of the wrong type is refused even where the published schema does not type it."""
    good = record_fields(LISTED[1], now=0.0)
    assert list(StatusRecord.model_fields) == list(EditRecord.model_fields)
    assert StatusRecord.model_validate(good).model_dump(mode="json") == good
    for name, bad in (("local_path", 5), ("warnings", "cropped"), ("progress", "half")):
        with pytest.raises(ValidationError):
            StatusRecord.model_validate({**good, name: bad})
