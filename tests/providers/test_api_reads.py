"""Status reads over aiohttp (providers/api_reads.py), on loopback: the same answers and the same errors as
httpx2 gives, and nothing but body-less GETs ever takes that path.

The split is seen from both ends: each adapter's client is a `ReadingClient` whose httpx2 transport is a
MockTransport in front of the fake, while the same fake is also served on loopback for aiohttp. A create
must reach the MockTransport and a status read the loopback server, never the other way round.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from aleph_mcp.errors import ProviderError, RateLimited, TransientProviderError
from aleph_mcp.models import EditRequest
from aleph_mcp.providers._http import ProviderHTTP
from aleph_mcp.providers.aimlapi import AimlapiProvider
from aleph_mcp.providers.api_reads import ApiReads, ReadingClient
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.crun import CrunProvider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server.first_use import FirstUseClient
from tests.fakes.aimlapi import FakeAimlapi
from tests.fakes.base import FakeAPI
from tests.fakes.crun import FakeCrun
from tests.fakes.kie import FakeKie
from tests.fakes.krea import FakeKrea
from tests.fakes.runway import FakeRunway
from tests.fakes.server import serve_fakes
from tests.providers.adapters import VIDEO

KEY = "sk-reads-0123456789abcdef"


def reading_client(transport: httpx2.AsyncBaseTransport | None = None) -> ReadingClient:
    headers = {"user-agent": "aleph-mcp/test"}
    return ReadingClient(
        reads=ApiReads(headers=headers, ssl_context=None), headers=headers, transport=transport
    )


# -- each adapter: creates by httpx2, status reads by aiohttp ----------------------------------------------
Builder = Callable[[httpx2.AsyncClient, str, str], Provider]
ADAPTERS: dict[str, tuple[Callable[[], FakeAPI], Builder, str]] = {
    "runway": (FakeRunway, lambda c, k, url: RunwayProvider(c, api_key=k, base_url=url), "aleph2"),
    "kie": (FakeKie, lambda c, k, url: KieProvider(c, api_key=k, base_url=url, upload_base_url=url), "aleph"),
    "aimlapi": (FakeAimlapi, lambda c, k, url: AimlapiProvider(c, api_key=k, base_url=url), "gen4_aleph"),
    "crun": (FakeCrun, lambda c, k, url: CrunProvider(c, api_key=k, base_url=url), "gen-4-aleph"),
    "krea": (FakeKrea, lambda c, k, url: KreaProvider(c, api_key=k, base_url=url), "aleph"),
}


class InProcess(httpx2.AsyncBaseTransport):
    """httpx2's side: hands the request to the fake in this process (without its mount) and logs it."""

    def __init__(self, fake: FakeAPI, mount: str) -> None:
        self.fake, self.mount, self.methods = fake, mount, list[str]()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.methods.append(request.method)
        url = request.url.copy_with(path=request.url.path.removeprefix(self.mount))
        inner = httpx2.Request(request.method, url, headers=request.headers, content=await request.aread())
        answer = self.fake(inner)
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.read())


@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_an_adapter_creates_over_httpx2_and_reads_statuses_over_aiohttp(name: str) -> None:
    make_fake, build, model = ADAPTERS[name]
    fake = make_fake()
    with serve_fakes({name: fake}) as origin:
        httpx_side = InProcess(fake, f"/{name}")
        async with reading_client(httpx_side) as client:
            provider = build(client, fake.api_key, f"{origin}/{name}")
            task_id = await provider.submit(EditRequest(prompt="Make it snow", video=VIDEO, model=model))
            states = [(await provider.poll(task_id)).status for _ in range(4)]
    assert "POST" in httpx_side.methods and "GET" not in httpx_side.methods
    wire = [(e.method, e.kind) for e in fake.exchanges]
    assert wire and all(method == "GET" and kind == "status" for method, kind in wire), wire
    assert states[-1] == "succeeded", states
    assert all(r.headers.get("user-agent") == "aleph-mcp/test" for r in fake.requests if r.method == "GET")


async def test_the_servers_first_use_client_reads_over_aiohttp_too() -> None:
    """The server hands providers a stand-in made real at its first request (server/first_use.py)."""
    fake = FakeRunway()
    with serve_fakes({"runway": fake}) as origin:
        httpx_side = InProcess(fake, "/runway")
        lazy = FirstUseClient(lambda: reading_client(httpx_side))
        try:
            provider = RunwayProvider(lazy.as_client(), api_key=fake.api_key, base_url=f"{origin}/runway")
            assert not lazy.made
            task_id = await provider.submit(EditRequest(prompt="Make it snow", video=VIDEO, model="aleph2"))
            await provider.poll(task_id)
        finally:
            await lazy.aclose()
    assert httpx_side.methods == ["POST"]
    assert [(e.method, e.kind) for e in fake.exchanges] == [("GET", "status")]


# -- one raw loopback server per case: whatever bytes a hostile host sends -------------------------------
Answer = Callable[[bytes], bytes | None]  # the request's head -> the raw answer (None: say nothing)


@asynccontextmanager
async def raw_host(answer: Answer) -> AsyncIterator[tuple[str, list[bytes]]]:
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            raw = answer(head)
            if raw is None:
                await asyncio.sleep(5)  # a host that never answers
            else:
                writer.write(raw)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()
        await server.wait_closed()


def http(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read(origin: str, path: str = "/v1/tasks/abc", timeout: float = 5.0) -> Any:
    async with reading_client() as client:
        api = ProviderHTTP(
            client,
            provider="runway",
            base_url=origin,
            headers={"authorization": f"Bearer {KEY}"},
            secrets=[KEY],
            timeout=timeout,
        )
        return await api.request("GET", path)


async def test_a_status_read_decodes_a_gzipped_answer_and_sends_the_key() -> None:
    body = gzip.compress(json.dumps({"id": "abc", "status": "RUNNING"}).encode())
    async with raw_host(lambda head: http("200 OK", body, "content-encoding: gzip")) as (origin, heads):
        assert await read(origin) == {"id": "abc", "status": "RUNNING"}
    assert f"authorization: Bearer {KEY}".lower().encode() in heads[0].lower()


async def test_a_task_id_is_sent_exactly_as_encoded() -> None:
    hostile = "../../v1/organization?x=%2F#frag"
    running = json.dumps({"id": "x", "status": "RUNNING"}).encode()
    async with raw_host(lambda head: http("200 OK", running)) as (origin, heads), reading_client() as client:
        status = await RunwayProvider(client, api_key=KEY, base_url=origin).poll(hostile)
    assert status.status == "running"
    request_line = heads[0].split(b"\r\n")[0].decode()
    assert request_line == "GET /v1/tasks/..%2F..%2Fv1%2Forganization%3Fx%3D%252F%23frag HTTP/1.1"


async def test_a_configured_proxy_carries_the_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured as httpx2 honours it: the read goes to the proxy, for the real host."""
    running = json.dumps({"id": "abc", "status": "RUNNING"}).encode()
    async with raw_host(lambda head: http("200 OK", running)) as (proxy, heads):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert await read("http://api.runway.invalid") == {"id": "abc", "status": "RUNNING"}
    assert heads[0].startswith(b"GET http://api.runway.invalid/v1/tasks/abc HTTP/1.1")


async def test_a_redirect_is_not_followed() -> None:
    async with raw_host(lambda head: http("200 OK", b'{"stolen": true}')) as (elsewhere, followed):
        moved = http("302 Found", b"", f"location: {elsewhere}/v1/tasks/abc")
        async with raw_host(lambda head: moved) as (origin, _):
            with pytest.raises(ProviderError):
                await read(origin)
    assert followed == []


async def test_a_rate_limit_keeps_its_retry_after_and_the_key_is_scrubbed() -> None:
    body = json.dumps({"error": f"slow down, {KEY}"}).encode()
    async with raw_host(lambda head: http("429 Too Many Requests", body, "retry-after: 7")) as (origin, _):
        with pytest.raises(RateLimited) as caught:
            await read(origin)
    assert caught.value.retry_after == 7
    assert KEY not in caught.value.message


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda head: http("200 OK", b"<html>not json</html>"), "not JSON"),
        (lambda head: b'HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{"status":', "broke"),
        (lambda head: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "broke"),
        (lambda head: b"", "broke"),
    ],
    ids=["not-json", "cut-short", "not-http", "closed"],
)
async def test_a_hostile_answer_is_a_transient_error(answer: Answer, says: str) -> None:
    async with raw_host(answer) as (origin, _):
        with pytest.raises(TransientProviderError) as caught:
            await read(origin)
    assert says in caught.value.message, caught.value.message


async def test_a_host_that_never_answers_times_out() -> None:
    async with raw_host(lambda head: None) as (origin, _):
        with pytest.raises(TransientProviderError) as caught:
            await read(origin, timeout=0.3)
    assert caught.value.code == "timeout"


async def test_a_closed_port_is_a_failure_to_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientProviderError) as caught:
        await read(f"http://127.0.0.1:{port}")
    assert "Could not connect" in caught.value.message
    assert KEY not in caught.value.message
