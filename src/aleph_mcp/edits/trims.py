"""Trims: `start_seconds` with `end_seconds` or `duration_seconds` choose the part of the input to edit.

The server cuts that part itself (media/cutting.py: stream copy on keyframes, else a re-encode of the cut)
before anything is sent, so the probe, the warnings, the quote and the model's window all see the cut. A URL
input is fetched first under the fetch policy (bounded in size), a data URI decoded; a local file is its
private copy, read under the usual root rules. A trim outside the clip, or an empty one, is refused with
nothing sent. The cut goes to the provider as a local file does (upload, data URI or read in place).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx2

from aleph_mcp.edits.chains import takes_files
from aleph_mcp.edits.preflight import probe_file
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import InvalidInput, TransientProviderError, UnsafeURL
from aleph_mcp.media.fetch import FetchPolicy, open_url
from aleph_mcp.providers.base import Capabilities, Provider

FETCH_MAX_BYTES = 512 * 1024 * 1024  # a URL fetched to be trimmed: no model takes more than a fraction
FETCH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Requested:
    """The trim as asked: `end` None means to the clip's end."""

    start: float
    end: float | None


def requested_trim(args: EditArgs) -> Requested | None:
    """The trim the arguments ask for, checked without reading the clip; None when they ask none."""
    start, end, duration = args.start_seconds, args.end_seconds, args.duration_seconds
    if start is None and end is None and duration is None:
        return None
    if end is not None and duration is not None:
        raise InvalidInput("Pass end_seconds or duration_seconds, not both; nothing was sent.")
    for name, value in (("start_seconds", start), ("end_seconds", end), ("duration_seconds", duration)):
        if value is not None and not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number of seconds.")
    begin = start or 0.0
    if begin < 0:
        raise InvalidInput(f"start_seconds ({begin:g}) is before the clip's start; pass 0 or more.")
    if duration is not None:
        if duration <= 0:
            raise InvalidInput(f"The trim is empty: duration_seconds ({duration:g}) must be above 0.")
        end = begin + duration
    if end is not None and end <= begin:
        raise InvalidInput(
            f"The trim is empty: end_seconds ({end:g}) must be after start_seconds ({begin:g})."
        )
    return Requested(begin, end)


def check_cut_route(caps: Capabilities, name: str, providers: Mapping[str, Provider]) -> None:
    """A trim travels as a file this server cut: refuse a provider that takes only URLs."""
    if takes_files(caps):
        return
    able = [p for p, other in providers.items() if takes_files(other.capabilities)]
    hint = f" Choose {', '.join(able)}, or trim the clip yourself and pass its URL." if able else ""
    raise InvalidInput(
        f"A trim is cut on this server and sent as a file, and {name} takes only URLs.{hint} "
        "Nothing was sent."
    )


async def cut_input(
    args: EditArgs,
    video: VideoInput,
    scratch: Path,
    http: httpx2.AsyncClient | None,
    policy: FetchPolicy,
) -> tuple[VideoInput, tuple[float, float] | None]:
    """The input as it will be edited: the trimmed part as a private file, and the trim (start, end) in
    seconds of the input; unchanged when no trim is asked."""
    wanted = requested_trim(args)
    if wanted is None:
        return video, None
    from aleph_mcp.media.cutting import check_trim, cut_clip  # PyAV is not start-up work

    source = await _local_source(video, scratch / "source", http, policy)
    length = (await probe_file(source)).duration
    if length is None:
        raise InvalidInput("The input's length could not be read, so it cannot be trimmed; nothing was sent.")
    # To the end: a start past the clip's end is refused as that, not as an empty trim.
    end = wanted.end if wanted.end is not None else max(length, wanted.start + 0.001)
    start, end = check_trim(wanted.start, end, length, slack=0.05)
    dest = scratch / "cut" / f"{Path(source).stem}-trim.mp4"
    dest.parent.mkdir(parents=True, exist_ok=True)
    await anyio.to_thread.run_sync(cut_clip, source, dest, start, end)
    cut = VideoInput(
        "path",
        str(dest),
        dest.stat().st_size,
        shown=video.display,
        digest=video.content_id,
        origin=video.origin,
    )
    return cut, (start, end)


async def _local_source(
    video: VideoInput, folder: Path, http: httpx2.AsyncClient | None, policy: FetchPolicy
) -> Path:
    """The input as a file here: a local file's private copy, a decoded data URI, a fetched URL."""
    if video.kind == "path":
        return Path(video.value)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / "input.mp4"
    if video.kind == "data":
        try:
            dest.write_bytes(base64.b64decode(video.value.split(",", 1)[1], validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput("The `video` data: URI holds invalid base64.") from None
        return dest
    if http is None:
        raise InvalidInput(
            "This server does not fetch input URLs (ALEPH_MCP_PROBE_URLS is off), so it cannot trim one: "
            "pass a local file or trim the clip first. Nothing was sent."
        )
    await _fetch(http, video.value, dest, policy)
    return dest


async def _fetch(http: httpx2.AsyncClient, url: str, dest: Path, policy: FetchPolicy) -> None:
    """Stream `url` into `dest` under the fetch policy, at most FETCH_MAX_BYTES."""
    size = 0
    try:
        async with open_url(http, url, policy, timeout=FETCH_TIMEOUT) as response:
            if not response.is_success:
                raise InvalidInput(
                    f"The `video` URL answered HTTP {response.status_code}, so it cannot be trimmed here."
                )
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes(256 * 1024):
                    size += len(chunk)
                    if size > FETCH_MAX_BYTES:
                        mb = FETCH_MAX_BYTES // 1048576
                        raise InvalidInput(f"The `video` URL serves more than {mb} MB; trim it first.")
                    out.write(chunk)
    except UnsafeURL as exc:
        raise InvalidInput(f"The `video` URL cannot be used: {exc.message} Nothing was sent.") from None
    except (httpx2.HTTPError, TransientProviderError) as exc:
        raise InvalidInput(
            f"The `video` URL could not be fetched to trim it ({type(exc).__name__}); nothing was sent."
        ) from None
