"""Media handling: the archive layout and streamed, atomic downloads of finished videos."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import anyio.to_thread
import httpx2

from aleph_mcp.errors import (
    AlephError,
    ArchiveWriteFailed,
    InvalidInput,
    OutputExpired,
    OutputNotVideo,
    TransientProviderError,
)
from aleph_mcp.media.fetch import FetchPolicy, open_url
from aleph_mcp.media.formats import check_video_file, open_image, open_video
from aleph_mcp.retry import error_for_status

if TYPE_CHECKING:
    import av  # imported where a still is written: PyAV is not start-up work

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # no retry will make these writable
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

    def input_path(self, edit_id: str) -> Path:
        """The (cut) input an edit was sent, kept until its before/after sheet is made (before_after.py)."""
        return self.root / f"{edit_id}.input.mp4"

    def compare_path(self, edit_id: str) -> Path:
        return self.root / f"{edit_id}.compare.jpg"

    def sweep_inputs(self, older_than: float, now: float) -> int:
        """Remove kept inputs older than `older_than` seconds: their edits ended without a sheet, or ran
        so long that a sheet is not worth the disk. Returns how many went."""
        removed = 0
        for kept in self.root.glob("*.input.mp4"):
            with contextlib.suppress(OSError):
                if kept.stat().st_mtime < now - older_than:
                    kept.unlink()
                    removed += 1
        return removed

    @contextlib.contextmanager
    def staged(self, dest: Path) -> Iterator[Path]:
        """A temp path beside `dest`, moved into place when the block ends cleanly: a file in the archive
        is always whole. Every archive write goes through here. Leftovers of earlier attempts (a process
        killed mid-download) are removed first, so the caller must hold the edit's lease."""
        for stale in dest.parent.glob(f".{dest.name}.*.part"):
            stale.unlink(missing_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            yield tmp
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def thumbnail_suffix(url: str, content_type: str | None = None) -> str:
    if content_type and content_type.split(";")[0].strip() in _IMAGE_TYPES:
        return _IMAGE_TYPES[content_type.split(";")[0].strip()]
    suffix = Path(urlparse(url).path).suffix.lower()
    return suffix if suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif") else ".png"


@contextlib.contextmanager
def _writing(what: str) -> Iterator[None]:
    """A failed write to the archive (full or read-only disk) is ArchiveWriteFailed, not a crash."""
    try:
        yield
    except OSError as exc:
        import av

        if isinstance(exc, av.FFmpegError) and exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES):
            raise
        raise ArchiveWriteFailed(
            f"Could not write the {what} to the archive ({exc.strerror or exc}).",
            permanent=exc.errno in READ_ONLY,
        ) from None


async def download(
    client: httpx2.AsyncClient,
    url: str,
    dest: Path,
    *,
    archive: Archive,
    policy: FetchPolicy,
    timeout: float | None = None,
    what: str = "video",
) -> int:
    """Stream `url` into `dest` under the fetch policy; the file appears only when complete and, for a
    video, only once it opens as one (OutputNotVideo otherwise, with the bytes deleted).

    Raises OutputExpired on 403/404/410 (signed URLs that lapsed), TransientProviderError on network trouble
    or 5xx, UnsafeURL for what the policy refuses, ArchiveWriteFailed when the archive cannot be written.
    `timeout` bounds each network wait (None: the client's own), not the whole transfer.
    """
    with _writing(what), archive.staged(dest) as tmp:
        size = await _stream(client, url, tmp, timeout, policy)
        if what == "video":
            await _check_video(tmp)
        return size


async def archive_file(source: Path, dest: Path, *, archive: Archive) -> int:
    """Copy a result this machine rendered (the local provider's job folder) into the archive."""
    if not source.is_file():
        raise OutputExpired(f"The result file {source.name} is gone.")
    with _writing("video"), archive.staged(dest) as tmp:
        await anyio.to_thread.run_sync(shutil.copyfile, source, tmp)
        await _check_video(tmp)
        return tmp.stat().st_size


async def _check_video(path: Path) -> None:
    try:
        await anyio.to_thread.run_sync(check_video_file, path)
    except InvalidInput as exc:
        raise OutputNotVideo(f"The provider's result is not a video: {exc.message}") from None


async def _stream(
    client: httpx2.AsyncClient, url: str, tmp: Path, timeout: float | None, policy: FetchPolicy
) -> int:
    host = urlparse(url).hostname or "the result host"
    size = 0
    try:
        async with open_url(client, url, policy, timeout=timeout) as response:
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
    except httpx2.RequestError as exc:  # transport trouble, a broken encoding
        raise TransientProviderError(f"Downloading the result failed ({type(exc).__name__}).") from None
    return size


THUMBNAIL_MAX_WIDTH = 480


def extract_poster(video: Path, dest: Path, *, max_width: int = THUMBNAIL_MAX_WIDTH) -> None:
    """Write a JPEG still from about 0.7 s into `video` (the first frames are often black)."""
    with open_video(video) as inp:
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
    """An image on the allowlist (PNG, JPEG, WebP, GIF) as a small JPEG: one MIME type for every thumbnail."""
    with open_image(source, "thumbnail") as inp:
        frame = next(inp.decode(video=0))
    write_jpeg(frame, dest, max_width=max_width)


def write_jpeg(frame: av.VideoFrame, dest: Path, *, max_width: int) -> None:
    import av

    width = min(frame.width, max_width)
    height = max(2, round(frame.height * width / frame.width))
    width, height = width - width % 2, height - height % 2
    with av.open(str(dest), "w", format="image2") as out:
        jpeg = out.add_stream("mjpeg")
        jpeg.width, jpeg.height, jpeg.pix_fmt = width, height, "yuvj420p"
        out.mux(jpeg.encode(frame.reformat(width=width, height=height, format="yuvj420p")))
        out.mux(jpeg.encode(None))


async def save_thumbnail(
    http: httpx2.AsyncClient,
    archive: Archive,
    edit_id: str,
    vendor_url: str | None,
    video: Path,
    *,
    policy: FetchPolicy,
) -> Path | None:
    """A small JPEG next to the archived video: the vendor's thumbnail where it gives one, else a still
    taken from the video. None when neither works: a missing thumbnail never holds back a finished video,
    but an archive that cannot be written (ArchiveWriteFailed) is the caller's to retry."""
    dest = archive.thumbnail_path(edit_id, ".jpg")
    if vendor_url:
        raw = archive.thumbnail_path(edit_id, ".vendor" + thumbnail_suffix(vendor_url))
        try:
            await download(http, vendor_url, raw, archive=archive, policy=policy, what="thumbnail")
            await _render(normalize_image, raw, dest, archive)
            return dest
        except ArchiveWriteFailed:
            raise
        except AlephError as exc:
            logger.warning("thumbnail not downloaded edit_id=%s reason=%s", edit_id, exc.message)
        except Exception as exc:  # PyAV raises its own error types for unreadable images
            logger.warning("thumbnail unreadable edit_id=%s error=%s", edit_id, exc)
        finally:
            raw.unlink(missing_ok=True)
    try:
        await _render(extract_poster, video, dest, archive)
        return dest
    except ArchiveWriteFailed:
        raise
    except Exception as exc:  # PyAV raises its own error types for unreadable media
        logger.warning("no poster frame edit_id=%s error=%s", edit_id, exc)
        return None


async def _render(make: Callable[[Path, Path], None], source: Path, dest: Path, archive: Archive) -> None:
    with _writing("thumbnail"), archive.staged(dest) as tmp:
        await anyio.to_thread.run_sync(make, source, tmp)
