"""Pre-flight checks of the input video before anything is uploaded or submitted.

Local files are probed with PyAV (readable container, a video stream, duration, resolution, size). Remote
URLs are probed cheaply: a HEAD and a ranged GET of the first megabyte, with a short timeout. What the
provider would refuse is refused here; what it would change silently becomes a warning in the edit's record.
A URL this machine cannot reach is not refused (the provider fetches it from its own network): it gets a
warning instead. A URL that points at a private, loopback or link-local address is refused: the server is
reachable by others, and its probe must not become their way into the network it sits in (fetch.py).
Media is opened only through the demuxer allowlist (formats.py); a still picture is not a video.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import httpx2

from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import InvalidInput, TransientProviderError, UnsafeURL
from aleph_mcp.media.fetch import FetchPolicy, read_url
from aleph_mcp.media.formats import IMAGE_DEMUXERS, check_moving, describe, open_video, sniff
from aleph_mcp.pricing.catalog import facts_of

if TYPE_CHECKING:
    import av  # imported at the first probe: PyAV is not start-up work

logger = logging.getLogger(__name__)

PROBE_BYTES = 1024 * 1024
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Probe:
    duration: float | None  # seconds
    width: int | None
    height: int | None
    codec: str | None
    size: int | None  # bytes


def probe_bytes_or_file(source: str | io.BytesIO, size: int | None, *, whole: bool = True) -> Probe:
    """Read container metadata with PyAV; raises InvalidInput for anything that is not a readable video.

    `whole`: the source is the entire file, so a still picture (one frame, no duration) is refused too."""
    import av

    try:
        with open_video(source) as container:
            if not container.streams.video:
                raise InvalidInput("The input has no video stream; pass a video file (MP4, MOV or WebM).")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            seconds = _video_seconds(container, stream)
            if whole:
                check_moving(container, seconds, "video")
            return Probe(seconds, ctx.width or None, ctx.height or None, ctx.name, size)
    except av.FFmpegError:
        raise InvalidInput(
            "The input is not a video this server can read (unknown container or codec, or a damaged file)."
        ) from None


def _video_seconds(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    """The video's own length from its first frame, which is what a model processes and bills. The
    container's spans every stream (sound may start earlier), so it is only the fallback, minus the time
    before the video's first frame."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if not container.duration:
        return None
    seconds = container.duration / 1_000_000
    if stream.start_time is not None and stream.time_base is not None and container.start_time is not None:
        seconds -= float(stream.start_time * stream.time_base) - container.start_time / 1_000_000
    return max(0.0, seconds)


async def probe_file(path: Path) -> Probe:
    size = path.stat().st_size
    return await anyio.to_thread.run_sync(probe_bytes_or_file, str(path), size)


async def probe_url(
    http: httpx2.AsyncClient, url: str, policy: FetchPolicy
) -> tuple[Probe | None, str | None]:
    """(probe, note): probe is None when the URL could not be read; note says what looked wrong.

    Raises InvalidInput when the policy refuses the URL (a private address, or a redirect to one) or when
    its first bytes are an image, not a video."""
    try:
        head, _ = await read_url(http, url, policy, method="HEAD", timeout=PROBE_TIMEOUT)
        if head.status_code >= 400:
            return None, f"it answered HTTP {head.status_code} to this machine"
        length = head.headers.get("content-length", "")
        size = int(length) if length.isdigit() else None
        content_type = head.headers.get("content-type", "").split(";")[0].strip()
        if content_type and not content_type.startswith("video/"):
            # Hosts label files loosely, so this is a warning; Runway does insist on a video/* type.
            note = f"it is served as {content_type}, not video/*; the provider may refuse it"
            return Probe(None, None, None, None, size), note
        ranged, body = await read_url(
            http, url, policy, headers={"range": f"bytes=0-{PROBE_BYTES - 1}"}, timeout=PROBE_TIMEOUT
        )
        if ranged.status_code >= 400:
            return Probe(None, None, None, None, size), None
        if sniff(body[:64]) in IMAGE_DEMUXERS:
            shown = describe(body[:64])
            raise InvalidInput(f"The `video` URL serves {shown}, not a video; pass a video clip.")
        try:
            probe = await anyio.to_thread.run_sync(
                lambda: probe_bytes_or_file(io.BytesIO(body), size, whole=False)
            )
            return probe, None
        except InvalidInput:
            # The first megabyte is often not enough (an MP4 index at the end): only the size is known.
            return Probe(None, None, None, None, size), None
    except UnsafeURL as exc:
        raise InvalidInput(
            f"The `video` URL cannot be used: {exc.message} Pass a public https URL, a data: URI or a local "
            "file."
        ) from None
    except (httpx2.HTTPError, httpx2.InvalidURL, TransientProviderError) as exc:
        return None, f"this machine could not reach it ({type(exc).__name__})"


def check_probe(probe: Probe, provider: str, model: str, limit: int | None, what: str = "video") -> list[str]:
    """Refuse what the provider refuses; return warnings for what it changes silently."""
    if probe.size is not None and limit is not None and probe.size > limit:
        raise InvalidInput(
            f"The `{what}` is {_mb(probe.size)}; {provider} accepts at most {_mb(limit)}. Trim or compress "
            "it, or choose a provider with a higher limit (runway uploads take up to 200 MB, krea 75 MB)."
        )
    warnings = []
    facts = facts_of(provider, model)
    processed = facts.max_processed_seconds
    if probe.duration is not None and processed is not None and probe.duration > processed + 0.05:
        warnings.append(
            f"The video is {probe.duration:.1f} s long; {provider} processes only the first {processed:g} s, "
            "so the result will be shorter. Trim it first to choose which part is edited."
        )
    minimum = facts.min_seconds
    if probe.duration is not None and minimum is not None and probe.duration < minimum:
        # A reseller's figure, so a warning rather than a refusal.
        warnings.append(
            f"The video is {probe.duration:.1f} s long; {provider} {model} reportedly needs at least "
            f"{minimum:g} s (a reseller's figure), so the provider may refuse it."
        )
    return warnings


async def inspect_input(
    video: VideoInput,
    provider: str,
    model: str,
    limit: int | None,
    http: httpx2.AsyncClient | None,
    policy: FetchPolicy,
) -> tuple[list[str], float | None]:
    """Check one input; returns warnings for the record and its length in seconds where it was read."""
    if video.kind == "path":
        local = await probe_file(Path(video.value))
        return check_probe(local, provider, model, limit), local.duration
    if video.kind == "url":
        if http is None:
            return [], None
        probe, note = await probe_url(http, video.value, policy)
        if probe is None:
            return [
                f"The video URL could not be checked: {note}. The provider fetches it from its own "
                "network; if it cannot, the edit will fail there."
            ], None
        warnings = check_probe(probe, provider, model, limit)
        return ([*warnings, f"The video URL looks wrong: {note}."] if note else warnings), probe.duration
    return [], None  # data URIs: size was checked when parsed; decoding megabytes here buys little


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
