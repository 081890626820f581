"""Before/after: a finished edit's contact sheet, as aleph://edits/{id}/compare and inline in its status."""

from __future__ import annotations

import base64
import io
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import mcp.types as types
import numpy as np
import pytest
from mcp import Client
from PIL import Image

from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.compare import GAP

from .conftest import TEST_KEY
from .fakes.runway import FakeRunway
from .media import LEFT, RIGHT
from .test_chains import finished, local_client, mixed_client, started


async def status_image(client: Client, edit_id: str) -> tuple[types.CallToolResult, Image.Image]:
    result = await client.call_tool("get_edit_status", {"edit_id": edit_id})
    (image,) = [b for b in result.content if isinstance(b, types.ImageContent)]
    assert image.mime_type == "image/jpeg"
    return result, Image.open(io.BytesIO(base64.b64decode(image.data)))


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(int(a) - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


def rows(sheet: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A pixel near the left edge of the first tile of each row (the clip's red or blue half)."""
    rgb = sheet.convert("RGB")
    tile_height = (sheet.height - 3 * GAP) // 2
    x = GAP + 6
    top = rgb.getpixel((x, GAP + tile_height * 3 // 4))
    bottom = rgb.getpixel((x, 2 * GAP + tile_height + tile_height * 3 // 4))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    return top, bottom


async def test_the_sheet_shows_the_input_above_the_output_inline_and_as_a_resource(
    tmp_path: Path, clip: Path
) -> None:
    """Mirrored: the input's red left half above the output's blue one, in the status and the resource."""
    async with local_client(tmp_path) as client:
        done = await finished(client, (await started(client, prompt="mirror it", video=str(clip)))["edit_id"])
        result, inline = await status_image(client, done["edit_id"])
        links = [str(b.uri) for b in result.content if isinstance(b, types.ResourceLink)]
        resource = (await client.read_resource(f"aleph://edits/{done['edit_id']}/compare")).contents[0]
    assert f"aleph://edits/{done['edit_id']}/compare" in links
    assert isinstance(resource, types.BlobResourceContents) and resource.mime_type == "image/jpeg"
    served = Image.open(io.BytesIO(base64.b64decode(resource.blob)))
    assert served.format == "JPEG" and served.size == inline.size and inline.width > inline.height
    top, bottom = rows(inline)
    assert near(top, LEFT) and near(bottom, RIGHT), (top, bottom)
    archive = Path(done["local_path"]).parent
    assert list(archive.glob("*.input.mp4")) == []  # the kept input went once the sheet was made


async def test_a_trim_is_compared_with_the_cut_it_sent(tmp_path: Path, inputs: Path) -> None:
    """The sheet's top row is the trimmed part: of a clip red then blue, its blue second."""
    clip = red_then_blue(inputs / "red-then-blue.mp4")
    async with local_client(tmp_path) as client:
        begun = await started(client, prompt="make it black and white", video=str(clip), start_seconds=1)
        done = await finished(client, begun["edit_id"])
        _, sheet = await status_image(client, done["edit_id"])
    top, bottom = rows(sheet)
    assert near(top, RIGHT) and abs(int(bottom[0]) - int(bottom[2])) < 12, (top, bottom)


def red_then_blue(path: Path, fps: int = 12) -> Path:
    """Two seconds: all red, then all blue."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for n in range(2 * fps):
            picture = np.zeros((96, 160, 3), dtype=np.uint8)
            picture[:] = LEFT if n < fps else RIGHT
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


async def test_a_url_input_has_no_sheet_and_the_thumbnail_is_shown(tmp_path: Path) -> None:
    """An https input is not fetched again for a sheet: the status shows the output's still instead."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, _):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        done = await finished(client, first["edit_id"])
        result, still = await status_image(client, done["edit_id"])
        with pytest.raises(Exception, match="no archived before/after sheet"):
            await client.read_resource(f"aleph://edits/{done['edit_id']}/compare")
    thumbnail = Path(done["local_path"]).with_name(f"{done['edit_id']}.thumb.jpg")
    with Image.open(thumbnail) as own:
        assert still.size == own.size  # the output's own still, not a two-row sheet
    assert not any(isinstance(b, types.ResourceLink) and "compare" in str(b.uri) for b in result.content)


async def test_a_chain_sent_by_its_parents_url_compares_with_the_parents_video(tmp_path: Path) -> None:
    """runway after runway keeps no input copy: the sheet's top row is the parent's archived video."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, _):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        parent = await finished(client, first["edit_id"])
        child = await finished(
            client,
            (await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway"))[
                "edit_id"
            ],
        )
        resource = (await client.read_resource(f"aleph://edits/{child['edit_id']}/compare")).contents[0]
    assert isinstance(resource, types.BlobResourceContents)
    with Image.open(io.BytesIO(base64.b64decode(resource.blob))) as sheet:
        assert sheet.format == "JPEG" and sheet.width > sheet.height


async def test_kept_inputs_of_edits_that_never_finished_are_swept(tmp_path: Path) -> None:
    """Old kept inputs go; a fresh one (an edit in flight) stays."""
    archive = LocalArchive(tmp_path / "archive")
    old, fresh = archive.input_path("ed_old"), archive.input_path("ed_new")
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    now = time.time()
    os.utime(old, (now - 7 * 3600, now - 7 * 3600))
    assert await archive.sweep_inputs(6 * 3600, now) == 1
    assert not old.exists() and fresh.exists()
