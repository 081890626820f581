"""A finished video's thumbnail: the vendor's still where it gives one, else a frame of the video, always
as a small JPEG in the archive beside the video."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import anyio.to_thread
import httpx2

from aleph_mcp.errors import AlephError, ArchiveWriteFailed
from aleph_mcp.media.archive import Archive, LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.media.formats import Source, open_image, open_video
from aleph_mcp.media.transfer import download

if TYPE_CHECKING:
    import av  # imported where a still is written: PyAV is not start-up work

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_WIDTH = 480
_IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


def thumbnail_suffix(url: str, content_type: str | None = None) -> str:
    if content_type and content_type.split(";")[0].strip() in _IMAGE_TYPES:
        return _IMAGE_TYPES[content_type.split(";")[0].strip()]
    suffix = Path(urlparse(url).path).suffix.lower()
    return suffix if suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif") else ".png"


def extract_poster(video: Source, dest: Path, *, max_width: int = THUMBNAIL_MAX_WIDTH) -> None:
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


def _poster_from(archive: Archive, video: str, dest: Path) -> None:
    with archive.reader(video) as source:
        extract_poster(source, dest)


async def save_thumbnail(
    http: httpx2.AsyncClient,
    archive: Archive,
    edit_id: str,
    vendor_url: str | None,
    video: str,
    *,
    policy: FetchPolicy,
) -> str | None:
    """A small JPEG next to the archived video (at `video`, a location of `archive`): the vendor's
    thumbnail where it gives one, else a still taken from the video. Its location; None when neither
    works: a missing thumbnail never holds back a finished video, but an archive that cannot be written
    (ArchiveWriteFailed) is the caller's to retry. The still is made in a scratch folder of this machine."""
    dest = archive.thumbnail_location(edit_id)
    with tempfile.TemporaryDirectory(prefix="aleph-thumb-") as scratch_dir:
        scratch = Path(scratch_dir)
        jpeg = scratch / "thumb.jpg"
        made = vendor_url is not None and await _vendor_still(
            http, vendor_url, scratch, jpeg, edit_id, policy
        )
        if not made:
            try:
                await anyio.to_thread.run_sync(_poster_from, archive, video, jpeg)
            except Exception as exc:  # PyAV raises its own error types for unreadable media
                logger.warning("no poster frame edit_id=%s error=%s", edit_id, type(exc).__name__)
                return None
        await archive.put_file(jpeg, dest, what="thumbnail")
        return dest


async def _vendor_still(
    http: httpx2.AsyncClient, url: str, scratch: Path, jpeg: Path, edit_id: str, policy: FetchPolicy
) -> bool:
    raw = f"vendor{thumbnail_suffix(url)}"
    try:
        await download(
            http, url, str(scratch / raw), archive=LocalArchive(scratch), policy=policy, what="thumbnail"
        )
        await anyio.to_thread.run_sync(normalize_image, scratch / raw, jpeg)
        return True
    except ArchiveWriteFailed:
        raise
    except AlephError as exc:
        logger.warning("thumbnail not downloaded edit_id=%s reason=%s", edit_id, exc.message)
    except Exception as exc:  # PyAV raises its own error types for unreadable images
        logger.warning("thumbnail unreadable edit_id=%s error=%s", edit_id, exc)
    return False
