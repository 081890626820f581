"""Chains end to end: `python -m aleph_mcp` over stdio, each loopback fake provider API, a refined result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fakes.vendors import FAKES
from .stdio import VIDEO, served_fakes, server_env, stdio_server, wait_for


@pytest.mark.parametrize("provider", list(FAKES))
async def test_a_result_is_refined_through_each_provider_by_the_best_route(
    provider: str, tmp_path: Path
) -> None:
    """Edit, then edit the result at the same provider: its own result URL where it keeps one (no
    upload), else the archived video uploaded; the record's lineage leads back to the first input."""
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        async with stdio_server(server_env(origin, tmp_path / "data", provider), log) as client:
            first = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            parent = await wait_for(client, first.structured_content["edit_id"], ("succeeded", "failed"))
            assert parent["status"] == "succeeded", parent
            second = await client.call_tool(
                "edit_video", {"prompt": "now make it night", "from_edit": parent["edit_id"]}
            )
            assert not second.is_error, second.content
            child = await wait_for(client, second.structured_content["edit_id"], ("succeeded", "failed"))
        api = apis[provider]
    assert child["status"] == "succeeded", child
    assert [(s["edit_id"], s["input"]) for s in child["lineage"]] == [
        (parent["edit_id"], VIDEO),
        (child["edit_id"], f"aleph://edits/{parent['edit_id']}/video"),
    ]
    assert len(api.creates) == 2
    sent = json.dumps(api.creates[1].json)
    if provider == "krea":  # keeps its result URL for an unstated time: the archived file is uploaded
        assert parent["output_url"] not in sent and len(getattr(api, "uploads", [])) == 1
    else:
        assert parent["output_url"] in sent and not getattr(api, "uploads", [])
