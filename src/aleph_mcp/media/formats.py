"""Media is opened as media: an explicit allowlist of PyAV demuxers, decided before FFmpeg opens anything.

FFmpeg picks a demuxer from a file's contents when not told one, and some demuxers open other files while
`av.open` runs (an HLS `.m3u8` playlist fetches its segments, a concat list or an image sequence reads the
files it names). So the first bytes are sniffed here, only a format on the allowlist is accepted, and that
format is passed to `av.open` explicitly: a playlist in an allowed folder never gets to open a file outside.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

from aleph_mcp.errors import InvalidInput

if TYPE_CHECKING:
    import av  # imported where a file is opened: PyAV is not start-up work

# The demuxers that may open a video or an image, by the short name `av.open(format=...)` takes.
VIDEO_DEMUXERS = {"mov": "mov,mp4,m4a,3gp,3g2,mj2", "matroska": "matroska,webm"}
IMAGE_DEMUXERS = {"png_pipe": "png_pipe", "jpeg_pipe": "jpeg_pipe", "webp_pipe": "webp_pipe", "gif": "gif"}
SNIFF_BYTES = 64
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_NAMES = {
    "png_pipe": "a PNG image",
    "jpeg_pipe": "a JPEG image",
    "webp_pipe": "a WebP image",
    "gif": "a GIF image",
    "mov": "an MP4/MOV video",
    "matroska": "a Matroska/WebM video",
}

Source = str | Path | IO[bytes]


def sniff(head: bytes) -> str | None:
    """The demuxer these first bytes call for, among the ones this server knows; None for anything else."""
    if head[4:8] in _MP4_BOXES:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png_pipe"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg_pipe"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp_pipe"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def describe(head: bytes) -> str:
    """What the bytes look like, for a message."""
    found = sniff(head)
    if found is not None:
        return _NAMES[found]
    text = head.lstrip().lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist"
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return "an HTML or XML page"
    if text.startswith(b"ffconcat"):
        return "an FFmpeg concat list"
    return "a file of an unknown kind"


def _head(source: Source) -> bytes:
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            return handle.read(SNIFF_BYTES)
    position = source.tell()
    head = source.read(SNIFF_BYTES)
    source.seek(position)
    return head


def open_allowed(source: Source, allowed: dict[str, str], what: str) -> av.container.InputContainer:
    """Open `source` with PyAV only as one of the `allowed` demuxers; InvalidInput for anything else."""
    head = _head(source)
    chosen = sniff(head)
    if chosen not in allowed:
        video = allowed is VIDEO_DEMUXERS
        kinds = "an MP4, MOV, MKV or WebM video" if video else "a PNG, JPEG, WebP or GIF image"
        wanted = "a video" if video else "an image"
        raise InvalidInput(f"The {what} is {describe(head)}, not {wanted} this server reads; pass {kinds}.")
    import av

    opened = str(source) if isinstance(source, Path) else source
    try:
        # protocol_whitelist: even the chosen demuxer may only read the one local file it was given.
        options = {"protocol_whitelist": "file"} if isinstance(opened, str) else {}
        container = av.open(opened, "r", format=chosen, options=options)
    except av.FFmpegError:
        raise InvalidInput(f"The {what} looks like {_NAMES[chosen]} but is damaged or unreadable.") from None
    if container.format.name.split(",")[0] not in allowed[chosen].split(","):
        container.close()
        raise InvalidInput(f"The {what} opened as {container.format.name}, which this server does not read.")
    return container


def open_video(source: Source, what: str = "video") -> av.container.InputContainer:
    return open_allowed(source, VIDEO_DEMUXERS, what)


def open_image(source: Source, what: str = "image") -> av.container.InputContainer:
    return open_allowed(source, IMAGE_DEMUXERS, what)


def check_video_file(path: Source, what: str = "result") -> None:
    """Raise InvalidInput unless `path` (a file, or a file object) opens through the video allowlist and
    has a video stream."""
    with open_video(path, what) as container:
        if not container.streams.video:
            raise InvalidInput(f"The {what} has no video stream.")


def check_image_file(path: Path, what: str = "reference_image") -> None:
    """Raise InvalidInput unless `path` is an image on the allowlist with a decodable picture."""
    import av

    try:
        with open_image(path, what) as container:
            next(container.decode(video=0))
    except (av.FFmpegError, StopIteration):
        raise InvalidInput(f"The {what} is not a readable image.") from None


def check_moving(container: av.container.InputContainer, seconds: float | None, what: str) -> None:
    """A still picture is not a video: refuse one frame, or no duration, before anything is sent."""
    stream = container.streams.video[0]
    frames = stream.frames
    if not frames:  # not in the header (Matroska): count the first packets instead
        frames = 0
        for packet in container.demux(stream):
            frames += packet.size > 0
            if frames > 1:
                break
    if frames <= 1 or not seconds:
        raise InvalidInput(
            f"The {what} is a still picture (one frame, or no duration), not a video; pass a video clip."
        )
