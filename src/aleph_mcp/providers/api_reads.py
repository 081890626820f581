"""Status reads of a provider's own API over aiohttp: the poller's one hot request, at a third of the CPU.

With thousands of edits in flight the poller reads a thousand statuses a second, and the event loop that
serves tool calls pays for each read: about 0.40 ms of CPU through httpx2's client and transport, 0.15 ms
through aiohttp (benchmarks/status_reads.py; benchmarks/poller_scale.py for the whole server). So
`ProviderHTTP` sends body-less GETs to the configured base URL through `ApiReads` when its client is a
`ReadingClient` (the one the app makes); everything else, creates (paid, never resent), uploads, cancels
and every download of a URL someone gave us, stays on httpx2 with its pinned addresses. An answer comes
back as an `httpx2.Response` and failures as httpx2's exceptions, so the code that turns them into our
errors is the same for both.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx2

if TYPE_CHECKING:
    import aiohttp


class ApiReads:
    """A lazily opened aiohttp session (aiohttp is imported on the first read, not at start-up)."""

    def __init__(self, *, headers: Mapping[str, str], ssl_context: ssl.SSLContext | None) -> None:
        # httpx2 decodes the body (content-encoding), as it does its own: aiohttp passes it through as is.
        self.headers = {"accept-encoding": "gzip, deflate", **headers}
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, url: str, *, headers: Mapping[str, str], timeout: float) -> httpx2.Response:
        """GET `url` (already encoded: sent byte for byte), redirects not followed, as httpx2 would."""
        import aiohttp
        import yarl

        session = await self._session_here()
        limits = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        try:
            async with session.get(
                yarl.URL(url, encoded=True), headers=headers, timeout=limits, allow_redirects=False
            ) as answer:
                body = await answer.read()
                return httpx2.Response(answer.status, headers=answer.raw_headers, content=body)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx2.ConnectTimeout(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, a bad certificate
            raise httpx2.ConnectError(str(exc)) from None
        except TimeoutError as exc:  # no answer within `timeout` of the last byte
            raise httpx2.ReadTimeout(str(exc)) from None
        except aiohttp.ClientError as exc:  # the connection broke or the answer was not HTTP
            raise httpx2.RemoteProtocolError(str(exc)) from None

    async def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # The first read imports aiohttp (about 0.1 s) in a thread, not on the event loop.
            aiohttp, default_context = await anyio.to_thread.run_sync(
                _import_aiohttp, self.ssl_context is None
            )
            # Another read may have opened it meanwhile.
            if self._session is None or self._loop is not loop:
                connector = aiohttp.TCPConnector(ssl=self.ssl_context or default_context)
                self._session = aiohttp.ClientSession(
                    connector=connector,
                    headers=self.headers,
                    auto_decompress=False,
                    # HTTPS_PROXY and NO_PROXY, as httpx2 honours them. Only when set: aiohttp then looks
                    # them up in a thread for every request, which costs more than the request itself.
                    trust_env=bool(urllib.request.getproxies()),
                )
                self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _import_aiohttp(need_context: bool) -> tuple[Any, ssl.SSLContext | None]:
    """aiohttp, and if asked, the certificates httpx2 trusts by default (for a client made without the
    start-up's warm-up, providers/tls.py)."""
    import aiohttp
    import httpcore2

    return aiohttp, httpcore2.default_ssl_context() if need_context else None


class ReadingClient(httpx2.AsyncClient):
    """The process's httpx2 client with `reads`: where its provider status reads go (see the module)."""

    def __init__(self, *, reads: ApiReads, **options: Any) -> None:
        super().__init__(**options)
        self.reads = reads

    async def aclose(self) -> None:
        try:
            await self.reads.aclose()
        finally:
            await super().aclose()

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.reads.aclose()
        finally:
            await super().__aexit__(*exc_info)
