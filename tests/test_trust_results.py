"""A hostile provider's answers are data: its result URLs cannot make the server read a local file, reach
another service, a private or metadata address, or archive something that is not a video."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError

from aleph_mcp.errors import UnsafeURL
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FAKE_VIDEO, FakeTask
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes

VIDEO = "https://cdn.example.com/in/clip.mp4"


class HostileRunway(FakeRunway):
    """Runway that answers every finished task with `result` as its output (and its preview)."""

    result = ""
    redirect: str | None = None  # its own file URL answers a redirect here instead
    body: bytes | None = None  # its own file URL answers these bytes instead of the video

    def video_url(self, task: FakeTask) -> str:
        return self.result or super().video_url(task)

    def image_url(self, task: FakeTask) -> str:
        return self.video_url(task)

    def serve_file(self, path: str) -> httpx2.Response:
        if self.redirect is not None:
            return httpx2.Response(302, headers={"location": self.redirect})
        if self.body is not None:
            return httpx2.Response(200, content=self.body, headers={"content-type": "video/mp4"})
        return super().serve_file(path)


class _Secret(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-length", str(len(FAKE_VIDEO)))
        self.end_headers()
        self.wfile.write(FAKE_VIDEO)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def other_service() -> Iterator[tuple[str, list[str]]]:
    """Another loopback service (a real, playable video at every path) the provider's base URL never names."""
    hits: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Secret", (_Secret,), {"hits": hits}))
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


async def metadata_dns(host: str, port: int) -> list[str]:
    """A name that resolves to the cloud metadata address; every other name to a public one."""
    return ["169.254.169.254"] if host == "metadata.example" else ["93.184.215.14"]


@asynccontextmanager
async def hostile(tmp_path: Path, fake: HostileRunway) -> AsyncIterator[tuple[Client, Path]]:
    with serve_fakes({"runway": fake}) as origin:
        settings = make_settings(
            tmp_path, default_provider="runway", runway_api_key=TEST_KEY, runway_base_url=f"{origin}/runway"
        )
        server = create_server(settings, store=InMemoryEditStore(), resolver=metadata_dns)
        async with Client(server) as client:
            yield client, settings.archive_dir


async def run_edit(client: Client) -> dict[str, Any]:
    started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
    assert started.structured_content is not None, started.content
    with anyio.fail_after(20):
        while True:
            result = await client.call_tool(
                "get_edit_status", {"edit_id": started.structured_content["edit_id"], "wait_seconds": 1}
            )
            record = result.structured_content
            assert isinstance(record, dict)
            if record["status"] in ("succeeded", "failed"):
                return record


async def assert_nothing_kept(client: Client, archive: Path, record: dict[str, Any]) -> None:
    assert sorted(p.name for p in archive.iterdir()) == []
    with pytest.raises(MCPError):
        await client.read_resource(f"aleph://edits/{record['edit_id']}/video")


HOSTILE_URLS = [
    "file:///etc/passwd",
    "http://{other}/secret.mp4",
    "https://{other}/secret.mp4",
    "https://10.0.0.1/x.mp4",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://metadata.example/latest/meta-data/",
    "https://[::ffff:127.0.0.1]/x.mp4",
    "data:video/mp4;base64,AAAAGGZ0eXBtcDQy",
    "aleph-local:local-0123456789abcdef",
]


async def refused(tmp_path: Path, url: str, how: str) -> dict[str, Any]:
    """Run one edit whose result is `url` (`how`: "result" names it, "redirect" redirects there); asserts
    it failed as url_refused, kept nothing, and that the other loopback service was never reached."""
    with other_service() as (other, hits):
        fake = HostileRunway(TEST_KEY, steps=("succeeded",))
        setattr(fake, how, url.format(other=other))
        async with hostile(tmp_path, fake) as (client, archive):
            record = await run_edit(client)
            assert record["status"] == "failed" and record["error"]["code"] == "url_refused"
            await assert_nothing_kept(client, archive, record)
    assert hits == []
    return record


@pytest.mark.parametrize("url", HOSTILE_URLS)
async def test_a_result_url_to_a_local_file_private_address_or_other_service_fails_the_edit(
    tmp_path: Path, url: str
) -> None:
    """The edit fails as url_refused; nothing is fetched from the other service, nothing is archived."""
    record = await refused(tmp_path, url, "result")
    assert record["output_url"] is None and record["local_path"] is None


@pytest.mark.parametrize("url", HOSTILE_URLS[:7])
async def test_a_redirect_from_the_providers_own_file_url_is_held_to_the_same_rule(
    tmp_path: Path, url: str
) -> None:
    """The provider's file URL redirects to a refused URL: the edit fails and the target is never reached."""
    await refused(tmp_path, url, "redirect")


@pytest.mark.parametrize(
    "body",
    [b"<!doctype html><html><body>Your video is ready!</body></html>", b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n"],
)
async def test_html_or_a_playlist_instead_of_a_video_fails_as_output_not_video(
    tmp_path: Path, body: bytes
) -> None:
    """Bytes that do not open as a video end the edit failed, and they are deleted."""
    fake = HostileRunway(TEST_KEY, steps=("succeeded",))
    fake.body = body
    async with hostile(tmp_path, fake) as (client, archive):
        record = await run_edit(client)
        assert record["status"] == "failed" and record["error"]["code"] == "output_not_video"
        await assert_nothing_kept(client, archive, record)


async def test_a_real_video_from_the_providers_own_origin_is_still_archived(tmp_path: Path) -> None:
    """The rule is not a wall: the configured origin's own result arrives as before."""
    async with hostile(tmp_path, HostileRunway(TEST_KEY, steps=("succeeded",))) as (client, _):
        record = await run_edit(client)
    assert record["status"] == "succeeded"
    assert Path(record["local_path"]).read_bytes() == FAKE_VIDEO


async def test_a_public_name_is_fetched_from_the_address_that_was_checked() -> None:
    """DNS is asked once; the request goes to that IP, with the name in Host and as the TLS server name."""
    asked: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.215.14"]

    target = await FetchPolicy(resolver=dns).target(httpx2.URL("https://cdn.example.com:8443/a.mp4?x=1"))
    assert str(target.url) == "https://93.184.215.14:8443/a.mp4?x=1"
    assert target.headers == {"host": "cdn.example.com:8443"}
    assert target.extensions == {"sni_hostname": "cdn.example.com"}
    assert asked == ["cdn.example.com"]


async def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    """Every address is checked: one loopback answer among public ones refuses the URL."""

    async def dns(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "127.0.0.1"]

    with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
        await FetchPolicy(resolver=dns).target(httpx2.URL("https://rebind.example/a.mp4"))


async def test_plain_http_is_fetched_only_from_a_configured_http_origin() -> None:
    """http://host:port is allowed exactly when a base URL names that origin; another port is refused."""
    policy = FetchPolicy.trusting(["http://127.0.0.1:8001/runway"])
    assert (await policy.target(httpx2.URL("http://127.0.0.1:8001/files/a.mp4"))).headers == {}
    with pytest.raises(UnsafeURL):
        await policy.target(httpx2.URL("http://127.0.0.1:8002/files/a.mp4"))
