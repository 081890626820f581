"""What agents read: every tool, parameter and resource template described; tidy, compact text."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mcp import Client

from aleph_mcp.models import EditRecord
from aleph_mcp.server import content, create_server

from .conftest import make_settings

TOOLS_LIST_BUDGET = 15_000  # bytes of the tools/list answer as it goes over the wire (compact JSON)


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
    assert len(templates) == 3 and all(t.title and t.description for t in templates)
    assert info is not None and info.icons and info.icons[0].src.startswith("data:image/svg+xml;base64,")


async def test_the_tools_list_answer_stays_under_its_budget(tmp_path: Path) -> None:
    """The whole tools/list answer, as sent, stays under 15 KB: clients read it every session."""
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


async def test_list_edits_publishes_its_record_schema_inline(tmp_path: Path) -> None:
    """list_edits' output schema holds each record's schema in place of a `$ref`: the same schema."""
    async with Client(create_server(make_settings(tmp_path))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["list_edits"].output_schema
    assert schema is not None and "$ref" not in json.dumps(schema)
    assert schema["properties"]["edits"]["items"] == EditRecord.model_json_schema()


def test_an_inline_still_is_read_once_per_version_of_its_file(tmp_path: Path) -> None:
    """The still is encoded once and reused, until the file changes; a vanished file inlines nothing."""
    still = tmp_path / "ed_1.thumb.jpg"
    still.write_bytes(b"first version")
    first = content._inline_image(still)
    again = content._inline_image(still)
    still.write_bytes(b"the second, longer version")
    changed = content._inline_image(still)
    still.unlink()
    gone = content._inline_image(still)
    assert first is not None and again is not None and changed is not None and gone is None
    assert first.data is again.data  # the same encoded string, not read and encoded again
    assert base64.b64decode(changed.data) == b"the second, longer version"
