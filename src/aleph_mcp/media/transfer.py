"""Taking a result into the archive: streamed downloads under the fetch policy, and copies of local files.

The copy runs at raw-copy speed: an identity-encoded body is read with `aiter_raw` (no decoder, no
re-chunking), and the archive writes in large batches off the event loop. A compressed body (a host that
gzips) goes through the decoder, as it must.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx2

from aleph_mcp.errors import OutputExpired, TransientProviderError
from aleph_mcp.media.archive import Archive, Sink, Verify, check_result_video
from aleph_mcp.media.fetch import FetchPolicy, open_url
from aleph_mcp.retry import error_for_status

_IDENTITY = ("", "identity")


async def download(
    client: httpx2.AsyncClient,
    url: str,
    location: str,
    *,
    archive: Archive,
    policy: FetchPolicy,
    timeout: float | None = None,
    what: str = "video",
) -> int:
    """Stream `url` into the archive at `location` under the fetch policy; it appears only when complete
    and, for a video, only once it opens as one (OutputNotVideo otherwise, with nothing kept).

    Raises OutputExpired on 403/404/410 (signed URLs that lapsed), TransientProviderError on network trouble
    or 5xx, UnsafeURL for what the policy refuses, ArchiveWriteFailed when the archive cannot be written.
    `timeout` bounds each network wait (None: the client's own), not the whole transfer.
    """
    verify: Verify | None = check_result_video if what == "video" else None
    host = urlparse(url).hostname or "the result host"
    try:
        async with open_url(client, url, policy, timeout=timeout) as response:
            if response.status_code in (403, 404, 410):
                raise OutputExpired(
                    f"The result URL answered {response.status_code}; it has probably expired."
                )
            if not response.is_success:
                await response.aread()
                raise error_for_status(host, response.status_code, response.text)
            async with archive.writer(location, verify, what) as sink:
                return await _copy(response, sink)
    except httpx2.RequestError as exc:  # transport trouble, a broken encoding
        raise TransientProviderError(f"Downloading the result failed ({type(exc).__name__}).") from None


async def _copy(response: httpx2.Response, sink: Sink) -> int:
    size = 0
    encoding = response.headers.get("content-encoding", "").strip().lower()
    # aiter_bytes for a body already read (an in-memory transport's) or compressed: it decodes and replays.
    raw = encoding in _IDENTITY and not response.is_stream_consumed
    chunks = response.aiter_raw() if raw else response.aiter_bytes()
    async for chunk in chunks:
        await sink.write(chunk)
        size += len(chunk)
    return size


async def archive_file(source: Path, location: str, *, archive: Archive) -> int:
    """Copy a result this machine rendered (the local provider's job folder) into the archive."""
    if not source.is_file():
        raise OutputExpired(f"The result file {source.name} is gone.")
    return await archive.put_file(source, location, check_result_video)
