"""The archive in an S3-compatible object store (obstore): `ALEPH_MCP_ARCHIVE_URL=s3://bucket/prefix`.

Endpoint, region and credentials come from the usual AWS variables (AWS_ENDPOINT_URL[_S3], AWS_REGION or
AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). A download streams from
the provider into a multipart upload (obstore buffers one part at a time): the object appears only when the
upload completes, and a failed one is aborted. The video check and the poster frame read the object through
a ranged, buffered reader, so no whole video is ever held in memory or on disk.

No message or log line carries a credential: errors name the failure's kind and the object's location.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

import anyio.to_thread

from aleph_mcp.errors import ArchiveWriteFailed, InvalidInput, OutputExpired
from aleph_mcp.media.archive import Sink, Verify, safe_id, verified
from aleph_mcp.media.formats import Source

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, ReadableFile
    from obstore.store import S3Config, S3Store

logger = logging.getLogger(__name__)

INPUT_SUFFIX = ".input.mp4"
PART_SIZE = 8 * 1024 * 1024  # S3 wants ≥ 5 MiB parts; one part is what is ever buffered
READ_BUFFER = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)*$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


class _RangeFile(io.RawIOBase):
    """obstore's buffered ranged reader as the file object PyAV reads (it wants plain bytes)."""

    def __init__(self, reader: ReadableFile) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return bytes(self._reader.read(None if size < 0 else size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._reader.seek(offset, whence)

    def tell(self) -> int:
        return self._reader.tell()

    def close(self) -> None:
        self._reader.close()
        super().close()


def store_errors() -> tuple[type[Exception], ...]:
    """What obstore raises: its own errors, and OSError kinds (FileNotFoundError for a missing object)."""
    from obstore.exceptions import BaseError

    return (BaseError, OSError)


class _PartSink:
    def __init__(self, out: AsyncWritableFile, what: str, location: str) -> None:
        self.out, self.what, self.location = out, what, location

    async def write(self, chunk: bytes) -> None:
        try:
            await self.out.write(chunk)
        except store_errors() as exc:
            raise _write_error(exc, self.what, self.location) from None


def _write_error(exc: Exception, what: str, location: str) -> ArchiveWriteFailed:
    from obstore.exceptions import NotFoundError, PermissionDeniedError, UnauthenticatedError

    # Refused credentials or a missing bucket will not heal by retrying; anything else (network, 5xx) may.
    # The reason is named by the error's kind only: obstore's text can carry request details.
    if isinstance(exc, NotFoundError | FileNotFoundError):
        reason, permanent = "no such bucket", True
    elif isinstance(exc, PermissionDeniedError | UnauthenticatedError | PermissionError):
        reason, permanent = "access denied: check the AWS credentials", True
    else:
        reason, permanent = type(exc).__name__, False
    return ArchiveWriteFailed(
        f"Could not write the {what} to the object store at {location} ({reason}).", permanent=permanent
    )


class S3Archive:
    """Objects `<prefix>/<edit_id>.mp4` and `<prefix>/<edit_id>.thumb.jpg` in one bucket."""

    def __init__(self, store: S3Store, bucket: str, prefix: str) -> None:
        self.store, self.bucket, self.prefix = store, bucket, prefix

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str]) -> S3Archive:
        bucket, prefix = parse_s3_url(url)
        try:
            from obstore.store import S3Store
        except ImportError:
            raise InvalidInput(
                "ALEPH_MCP_ARCHIVE_URL names an object store, which needs the s3 extra: "
                "pip install 'aleph-mcp[s3]'."
            ) from None
        config = s3_config(environ)
        store = S3Store(
            bucket,
            prefix=prefix or None,
            config=cast("S3Config", config),
            client_options={
                "allow_http": str(config.get("endpoint", "")).startswith("http://"),
                "connect_timeout": timedelta(seconds=5),
            },
            # A few quick retries: the poller retries a failed archive write with its own backoff.
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=20)},
        )
        return cls(store, bucket, prefix)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _location(self, name: str) -> str:
        return f"{self.describe()}/{name}"

    def video_location(self, edit_id: str) -> str:
        return self._location(f"{safe_id(edit_id)}.mp4")

    def thumbnail_location(self, edit_id: str) -> str:
        return self._location(f"{safe_id(edit_id)}.thumb.jpg")

    def input_location(self, edit_id: str) -> str:
        return self._location(f"{safe_id(edit_id)}{INPUT_SUFFIX}")

    def compare_location(self, edit_id: str) -> str:
        return self._location(f"{safe_id(edit_id)}.compare.jpg")

    async def sweep_inputs(self, older_than: float, now: float) -> int:
        """Lists the prefix (start-up only: a listing costs a request per thousand objects)."""
        import obstore

        removed, cutoff = 0, now - older_than
        try:
            async for batch in obstore.list(self.store, chunk_size=1000):
                for meta in batch:
                    name = str(meta["path"])
                    if "/" in name or not name.endswith(INPUT_SUFFIX):
                        continue
                    if meta["last_modified"].timestamp() < cutoff:
                        await self.delete(self._location(name))
                        removed += 1
        except store_errors() as exc:  # a sweep that cannot run now runs at the next start
            logger.warning("kept inputs not swept archive=%s error=%s", self.describe(), type(exc).__name__)
        return removed

    def key(self, location: str) -> str | None:
        """The object's path under the prefix, for a location of this archive only: one name, no `/`, no
        `..`; None for anything else (another bucket, a path, a hostile value)."""
        head = self.describe() + "/"
        if not location.startswith(head):
            return None
        name = location[len(head) :]
        return name if _NAME.fullmatch(name) else None

    def _key_for_write(self, location: str) -> str:
        key = self.key(location)
        if key is None:
            raise InvalidInput(f"{location!r} is not a location in the archive {self.describe()}.")
        return key

    @contextlib.asynccontextmanager
    async def writer(
        self, location: str, verify: Verify | None = None, what: str = "video"
    ) -> AsyncIterator[Sink]:
        import obstore

        key = self._key_for_write(location)
        try:
            out = obstore.open_writer_async(self.store, key, buffer_size=PART_SIZE)
            await out.__aenter__()
        except store_errors() as exc:
            raise _write_error(exc, what, location) from None
        try:
            yield _PartSink(out, what, location)
        except BaseException as exc:
            # The writer's exit with an error aborts the multipart upload: nothing of it stays.
            with anyio.CancelScope(shield=True), contextlib.suppress(*store_errors()):
                await out.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            await out.__aexit__(None, None, None)  # completes the upload: the object appears now
        except store_errors() as exc:
            raise _write_error(exc, what, location) from None
        await self._verify(location, verify)

    async def _verify(self, location: str, verify: Verify | None) -> None:
        """The completed object is checked through the ranged reader; one that fails goes again."""
        if verify is None:
            return

        def check() -> None:
            with self.reader(location) as source:
                verify(source)

        try:
            await verified(check)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.delete(location)
            if isinstance(exc, store_errors()):
                raise _write_error(exc, "video", location) from None
            raise

    async def put_file(
        self, source: Path, location: str, verify: Verify | None = None, what: str = "video"
    ) -> int:
        import obstore

        if not source.is_file():
            raise OutputExpired(f"The result file {source.name} is gone.")
        key = self._key_for_write(location)
        if verify is not None:  # a local file is checked before anything is sent
            await verified(lambda: verify(source))
        try:
            await obstore.put_async(self.store, key, source, chunk_size=PART_SIZE)
        except store_errors() as exc:
            raise _write_error(exc, what, location) from None
        return source.stat().st_size

    @contextlib.contextmanager
    def reader(self, location: str) -> Iterator[Source]:
        import obstore

        key = self.key(location)
        if key is None:
            raise FileNotFoundError(location)
        with _RangeFile(obstore.open_reader(self.store, key, buffer_size=READ_BUFFER)) as handle:
            yield cast("IO[bytes]", handle)

    async def size(self, location: str) -> int | None:
        import obstore
        from obstore.exceptions import NotFoundError

        key = self.key(location)
        if key is None:
            return None
        try:
            return int((await obstore.head_async(self.store, key))["size"])
        except (NotFoundError, FileNotFoundError):
            return None

    async def read(self, location: str, max_bytes: int) -> bytes:
        import obstore

        key = self.key(location)
        if key is None:
            raise FileNotFoundError(location)
        result = await obstore.get_async(self.store, key)
        data = bytearray()
        async for chunk in result.stream(min_chunk_size=READ_BUFFER):
            data += chunk
            if len(data) > max_bytes:  # stops reading at the cap, whatever the object's size
                raise ValueError(f"more than {max_bytes} bytes")
        return bytes(data)

    async def delete(self, location: str) -> None:
        import obstore
        from obstore.exceptions import NotFoundError

        key = self.key(location)
        if key is not None:
            with contextlib.suppress(NotFoundError, FileNotFoundError):
                await obstore.delete_async(self.store, key)

    async def link(self, location: str, expires_in: float) -> str | None:
        import obstore

        key = self.key(location)
        if key is None:
            return None
        return await obstore.sign_async(self.store, "GET", key, timedelta(seconds=expires_in))

    def local_file(self, location: str) -> Path | None:
        return None

    async def check_writable(self) -> str:
        import obstore

        probe = f".doctor-{os.getpid()}-probe"
        try:
            await obstore.put_async(self.store, probe, b"ok")
            await obstore.delete_async(self.store, probe)
        except store_errors() as exc:
            raise _write_error(exc, "probe", self._location(probe)) from None
        return f"{self.describe()} (writable)"


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix/parts` as (bucket, "prefix/parts"); InvalidInput for anything else."""
    parsed = urlparse(url)
    bucket = parsed.netloc
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme != "s3" or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise InvalidInput("ALEPH_MCP_ARCHIVE_URL must look like s3://bucket or s3://bucket/prefix.")
    if (
        parsed.query
        or parsed.fragment
        or any(p in (".", "..") or not _PREFIX_PART.fullmatch(p) for p in parts)
    ):
        raise InvalidInput("The prefix of ALEPH_MCP_ARCHIVE_URL may hold letters, digits and - _ . only.")
    return bucket, "/".join(parts)


def s3_config(environ: Mapping[str, str]) -> dict[str, str | bool]:
    """obstore's S3 settings from the usual AWS variable names (only those that are set)."""
    wanted = {
        "endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
        "access_key_id": ("AWS_ACCESS_KEY_ID",),
        "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
        "session_token": ("AWS_SESSION_TOKEN",),
    }
    config: dict[str, str | bool] = {}
    for field, names in wanted.items():
        value = next((environ[n] for n in names if environ.get(n)), None)
        if value:
            config[field] = value
    if "endpoint" in config:  # a custom endpoint (MinIO, moto, R2…) is addressed path-style
        config["virtual_hosted_style_request"] = False
    config.setdefault("region", "us-east-1")
    return config
