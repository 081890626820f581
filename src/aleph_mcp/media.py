"""Media handling: the archive layout and streamed, atomic downloads of finished videos."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio.to_thread
import av
import httpx2

from aleph_mcp.errors import AlephError, OutputExpired, TransientProviderError
from aleph_mcp.retry import error_for_status

logger = logging.getLogger(__name__)

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


async def download(client: httpx2.AsyncClient, url: str, dest: Path, *, timeout: float | None = None) -> int:
    """Stream `url` into `dest`; the file appears only when complete (temp file + atomic rename).

    Raises OutputExpired on 403/404/410 (signed URLs that lapsed), TransientProviderError on network trouble
    or 5xx. `file://` URLs (the local provider's results) are copied. `timeout` bounds each network wait
    (None: the client's own, the server's request timeout), not the whole transfer.
    The caller must hold the edit's lease: leftovers of earlier attempts at `dest` (a process killed
    mid-download) are removed first, and only a holder can know none of them is still being written.
    """
    for stale in dest.parent.glob(f".{dest.name}.*.part"):
        stale.unlink(missing_ok=True)
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


async def _stream(client: httpx2.AsyncClient, url: str, tmp: Path, timeout: float | None) -> int:
    host = urlparse(url).hostname or "the result host"
    size = 0
    wait = httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout
    try:
        async with client.stream("GET", url, timeout=wait, follow_redirects=True) as response:
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


THUMBNAIL_MAX_WIDTH = 480


def extract_poster(video: Path, dest: Path, *, max_width: int = THUMBNAIL_MAX_WIDTH) -> None:
    """Write a JPEG still from about 0.7 s into `video` (the first frames are often black)."""
    with av.open(str(video)) as inp:
        stream = inp.streams.video[0]
        target = int((stream.average_rate or 24) * 2) // 3
        chosen = None
        for index, frame in enumerate(inp.decode(stream)):
            chosen = frame  # a clip shorter than the target gives its last frame
            if index >= target:
                break
    if chosen is None:
        raise ValueError("the video has no frames")
    write_jpeg(chosen, dest, max_width=max_width)


def normalize_image(source: Path, dest: Path, *, max_width: int = THUMBNAIL_MAX_WIDTH) -> None:
    """Any image PyAV reads (PNG, JPEG, WebP) as a small JPEG: one MIME type for every thumbnail."""
    with av.open(str(source)) as inp:
        frame = next(inp.decode(video=0))
    write_jpeg(frame, dest, max_width=max_width)


def write_jpeg(frame: av.VideoFrame, dest: Path, *, max_width: int) -> None:
    width = min(frame.width, max_width)
    height = max(2, round(frame.height * width / frame.width))
    width, height = width - width % 2, height - height % 2
    with av.open(str(dest), "w", format="image2") as out:
        jpeg = out.add_stream("mjpeg")
        jpeg.width, jpeg.height, jpeg.pix_fmt = width, height, "yuvj420p"
        out.mux(jpeg.encode(frame.reformat(width=width, height=height, format="yuvj420p")))
        out.mux(jpeg.encode(None))


async def save_thumbnail(
    http: httpx2.AsyncClient, archive: Archive, edit_id: str, vendor_url: str | None, video: Path
) -> Path | None:
    """A small JPEG next to the archived video: the vendor's thumbnail where it gives one, else a still
    taken from the video. None when neither works; a missing thumbnail never holds back a finished video."""
    dest = archive.thumbnail_path(edit_id, ".jpg")
    if vendor_url:
        raw = archive.thumbnail_path(edit_id, ".vendor" + thumbnail_suffix(vendor_url))
        try:
            await download(http, vendor_url, raw)
            await anyio.to_thread.run_sync(normalize_image, raw, dest)
            return dest
        except AlephError as exc:
            logger.warning("thumbnail not downloaded edit_id=%s reason=%s", edit_id, exc.message)
        except Exception as exc:  # PyAV raises its own error types for unreadable images
            logger.warning("thumbnail unreadable edit_id=%s error=%s", edit_id, exc)
        finally:
            raw.unlink(missing_ok=True)
    try:
        await anyio.to_thread.run_sync(extract_poster, video, dest)
        return dest
    except Exception as exc:  # PyAV raises its own error types for unreadable media
        logger.warning("no poster frame edit_id=%s error=%s", edit_id, exc)
        return None
