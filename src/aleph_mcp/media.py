"""Media handling: the archive layout and streamed, atomic downloads of finished videos."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio.to_thread
import av
import httpx2

from .errors import OutputExpired, TransientProviderError
from .providers._http import error_for_status

CHUNK = 256 * 1024
_IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


class Archive:
    """Where finished videos and thumbnails live: `<data_dir>/archive/<edit_id>.mp4` and `.thumb.<ext>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def video_path(self, edit_id: str) -> Path:
        return self.root / f"{edit_id}.mp4"

    def thumbnail_path(self, edit_id: str, suffix: str) -> Path:
        return self.root / f"{edit_id}.thumb{suffix}"


def thumbnail_suffix(url: str, content_type: str | None = None) -> str:
    if content_type and content_type.split(";")[0].strip() in _IMAGE_TYPES:
        return _IMAGE_TYPES[content_type.split(";")[0].strip()]
    suffix = Path(urlparse(url).path).suffix.lower()
    return suffix if suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif") else ".png"


async def download(client: httpx2.AsyncClient, url: str, dest: Path, *, timeout: float = 120.0) -> int:
    """Stream `url` into `dest`; the file appears only when complete (temp file + atomic rename).

    Raises OutputExpired on 403/404/410 (signed URLs that lapsed), TransientProviderError on network trouble
    or 5xx. `file://` URLs (the local provider's results) are copied.
    """
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        if url.startswith("file://"):
            size = await _copy_local(Path(unquote(urlparse(url).path)), tmp)
        else:
            size = await _stream(client, url, tmp, timeout)
        os.replace(tmp, dest)
        return size
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


async def _copy_local(source: Path, tmp: Path) -> int:
    if not source.is_file():
        raise OutputExpired(f"The result file {source.name} is gone.")
    await anyio.to_thread.run_sync(shutil.copyfile, source, tmp)
    return tmp.stat().st_size


async def _stream(client: httpx2.AsyncClient, url: str, tmp: Path, timeout: float) -> int:
    host = urlparse(url).hostname or "the result host"
    size = 0
    try:
        async with client.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code in (403, 404, 410):
                raise OutputExpired(
                    f"The result URL answered {response.status_code}; it has probably expired."
                )
            if not response.is_success:
                await response.aread()
                raise error_for_status(host, response.status_code, response.text)
            with tmp.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
    except httpx2.RequestError as exc:  # transport trouble, a broken encoding, a redirect loop
        raise TransientProviderError(f"Downloading the result failed ({type(exc).__name__}).") from None
    return size


def extract_poster(video: Path, dest: Path, *, max_width: int = 640) -> None:
    """Write a PNG still from about a third into `video` (the first frame is often black)."""
    with av.open(str(video)) as inp:
        stream = inp.streams.video[0]
        frames = list(_first_frames(inp, stream, limit=int((stream.average_rate or 24) * 2)))
        if not frames:
            raise ValueError("the video has no frames")
        frame = frames[len(frames) // 3]
        if frame.width > max_width:
            frame = frame.reformat(
                width=max_width, height=round(frame.height * max_width / frame.width / 2) * 2
            )
        with av.open(str(dest), "w", format="image2") as out:
            png = out.add_stream("png")
            png.width, png.height, png.pix_fmt = frame.width, frame.height, "rgb24"
            out.mux(png.encode(frame.reformat(format="rgb24")))
            out.mux(png.encode(None))


def _first_frames(
    inp: av.container.InputContainer, stream: av.video.stream.VideoStream, limit: int
) -> list[av.VideoFrame]:
    frames = []
    for frame in inp.decode(stream):
        frames.append(frame)
        if len(frames) >= limit:
            break
    return frames
