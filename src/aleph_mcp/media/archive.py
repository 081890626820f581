"""The archive seam: where finished videos and thumbnails live, and streamed, atomic writes into it.

One `Archive` protocol with two implementations: `LocalArchive`, a folder on this machine (the default:
`<data_dir>/archive/<edit_id>.mp4` and `.thumb.jpg`), and `S3Archive` (media/objectstore.py), an
S3-compatible bucket chosen by `ALEPH_MCP_ARCHIVE_URL=s3://bucket/prefix`. An edit keeps its video's and
thumbnail's *location* (`Edit.local_path`, `Edit.thumbnail_path`): a path for the folder, `s3://…` for the
bucket. Every read and write of them goes through the archive that made them.

Writes are whole or absent: a local file is written under a per-edit temp name and renamed into place, an
object is a multipart upload completed only at the end (aborted on failure). The caller holds the edit's
lease, so no two writers share a temp name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

import anyio.to_thread

from aleph_mcp.errors import ArchiveWriteFailed, InvalidInput, OutputExpired, OutputNotVideo
from aleph_mcp.media.formats import Source, check_video_file

READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # no retry will make these writable
# Disk writes are batched to this size and made on a worker thread: the event loop never waits on a disk.
WRITE_BATCH = 1024 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

Verify = Callable[[Source], None]  # raises InvalidInput when the written bytes are not what was expected


def safe_id(edit_id: str) -> str:
    """An edit id as a file or key name: letters, digits, `_` and `-` only, so no id leaves the archive."""
    if not _SAFE_ID.fullmatch(edit_id):
        raise InvalidInput(f"{edit_id!r} is not an edit id.")
    return edit_id


class Sink(Protocol):
    async def write(self, chunk: bytes) -> None: ...


class Archive(Protocol):
    """Where results are kept. Locations are what `video_location`/`thumbnail_location` give; a location
    from elsewhere (another archive, a hostile value) is refused or reads as absent."""

    def describe(self) -> str:
        """Where it is, for people: a folder, or `s3://bucket/prefix` (never a credential)."""
        ...

    def video_location(self, edit_id: str) -> str: ...

    def thumbnail_location(self, edit_id: str) -> str: ...

    def input_location(self, edit_id: str) -> str:
        """The (cut) input an edit was sent, kept until its before/after sheet is made (before_after.py)."""
        ...

    def compare_location(self, edit_id: str) -> str: ...

    async def sweep_inputs(self, older_than: float, now: float) -> int:
        """Remove kept inputs older than `older_than` seconds (their edits ended without a sheet, or ran
        so long that a sheet is not worth the space); how many went. Run at start-up only."""
        ...

    def writer(
        self, location: str, verify: Verify | None = None, what: str = "video"
    ) -> contextlib.AbstractAsyncContextManager[Sink]:
        """Write `location` as a stream: it appears only when the block ends cleanly and `verify` (run on a
        worker thread) accepts the bytes; otherwise nothing of it is left."""
        ...

    async def put_file(
        self, source: Path, location: str, verify: Verify | None = None, what: str = "video"
    ) -> int:
        """Copy a file of this machine to `location` (whole or not at all); its size."""
        ...

    def reader(self, location: str) -> contextlib.AbstractContextManager[Source]:
        """For a worker thread (PyAV): the location as something `av.open` reads, bounded in memory."""
        ...

    async def size(self, location: str) -> int | None:
        """Its size in bytes; None when it is not there."""
        ...

    async def read(self, location: str, max_bytes: int) -> bytes:
        """Its bytes, refusing (ValueError) more than `max_bytes`."""
        ...

    async def delete(self, location: str) -> None: ...

    async def link(self, location: str, expires_in: float) -> str | None:
        """A link that fetches it without credentials for `expires_in` seconds; None for a local file."""
        ...

    def local_file(self, location: str) -> Path | None:
        """The location as a file of this machine, where it is one."""
        ...

    async def check_writable(self) -> str:
        """Write and delete a probe; a short description of what was checked. Raises ArchiveWriteFailed."""
        ...


class _FileSink:
    """Chunks gathered to WRITE_BATCH and written on a worker thread."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.pending, self.pending_bytes = out, list[bytes](), 0

    async def write(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        if self.pending_bytes >= WRITE_BATCH:
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending, self.pending_bytes = self.pending, [], 0
        if batch:
            await anyio.to_thread.run_sync(self.out.writelines, batch)


class LocalArchive:
    """A folder: `<root>/<edit_id>.mp4` and `<root>/<edit_id>.thumb.jpg`, temp files `.<name>.part`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.root)

    def video_path(self, edit_id: str) -> Path:
        return self.root / f"{safe_id(edit_id)}.mp4"

    def thumbnail_path(self, edit_id: str, suffix: str = ".jpg") -> Path:
        return self.root / f"{safe_id(edit_id)}.thumb{suffix}"

    def video_location(self, edit_id: str) -> str:
        return str(self.video_path(edit_id))

    def thumbnail_location(self, edit_id: str) -> str:
        return str(self.thumbnail_path(edit_id))

    def part_path(self, dest: Path) -> Path:
        """The temp name every write of `dest` goes through, moved into place once whole. It is the
        destination's own, so a leftover of a killed attempt is overwritten by the next: no write lists
        the folder."""
        return dest.with_name(f".{dest.name}.part")

    @contextlib.asynccontextmanager
    async def writer(
        self, location: str, verify: Verify | None = None, what: str = "video"
    ) -> AsyncIterator[Sink]:
        dest = Path(location)
        with writing(what):
            tmp = self.part_path(dest)
            try:
                out = await anyio.to_thread.run_sync(tmp.open, "wb")
                try:
                    sink = _FileSink(out)
                    yield sink
                    await sink.flush()
                finally:
                    with anyio.CancelScope(shield=True):  # a cancelled download still closes its file
                        await anyio.to_thread.run_sync(out.close)
                if verify is not None:
                    await verified(lambda: verify(tmp))
                await anyio.to_thread.run_sync(os.replace, tmp, dest)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.Path(tmp).unlink(missing_ok=True)

    async def put_file(
        self, source: Path, location: str, verify: Verify | None = None, what: str = "video"
    ) -> int:
        if not source.is_file():
            raise OutputExpired(f"The result file {source.name} is gone.")
        dest = Path(location)
        with writing(what):
            tmp = self.part_path(dest)
            try:
                await anyio.to_thread.run_sync(shutil.copyfile, source, tmp)
                if verify is not None:
                    await verified(lambda: verify(tmp))
                size = (await anyio.Path(tmp).stat()).st_size
                await anyio.to_thread.run_sync(os.replace, tmp, dest)
                return size
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.Path(tmp).unlink(missing_ok=True)

    def input_path(self, edit_id: str) -> Path:
        return self.root / f"{safe_id(edit_id)}.input.mp4"

    def compare_path(self, edit_id: str) -> Path:
        return self.root / f"{safe_id(edit_id)}.compare.jpg"

    def input_location(self, edit_id: str) -> str:
        return str(self.input_path(edit_id))

    def compare_location(self, edit_id: str) -> str:
        return str(self.compare_path(edit_id))

    async def sweep_inputs(self, older_than: float, now: float) -> int:
        return await anyio.to_thread.run_sync(self._sweep_inputs, older_than, now)

    def _sweep_inputs(self, older_than: float, now: float) -> int:
        removed = 0
        for kept in self.root.glob("*.input.mp4"):
            with contextlib.suppress(OSError):
                if kept.stat().st_mtime < now - older_than:
                    kept.unlink()
                    removed += 1
        return removed

    @contextlib.contextmanager
    def reader(self, location: str) -> Iterator[Source]:
        yield Path(location)

    async def size(self, location: str) -> int | None:
        path = anyio.Path(location)
        return (await path.stat()).st_size if location and await path.is_file() else None

    async def read(self, location: str, max_bytes: int) -> bytes:
        async with await anyio.open_file(location, "rb") as handle:
            data = await handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"more than {max_bytes} bytes")
        return data

    async def delete(self, location: str) -> None:
        path = Path(location)
        for stale in (path, path.with_name(f".{path.name}.part")):
            await anyio.Path(stale).unlink(missing_ok=True)

    async def link(self, location: str, expires_in: float) -> str | None:
        return None

    def local_file(self, location: str) -> Path | None:
        return Path(location) if location else None

    async def check_writable(self) -> str:
        probe = self.root / f".doctor-{os.getpid()}.probe"
        with writing("probe"):
            await anyio.to_thread.run_sync(self.root.mkdir, 0o777, True, True)
            await anyio.Path(probe).write_bytes(b"ok")
            await anyio.Path(probe).unlink()
        free = shutil.disk_usage(self.root).free
        return f"{self.root} (writable, {free / 1024**3:.1f} GB free)"


async def verified(check: Callable[[], None]) -> None:
    """Run a check of written bytes on a worker thread: InvalidInput from it is OutputNotVideo."""
    try:
        await anyio.to_thread.run_sync(check)
    except InvalidInput as exc:
        raise OutputNotVideo(f"The provider's result is not a video: {exc.message}") from None


def check_result_video(source: Source) -> None:
    check_video_file(source)


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
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
