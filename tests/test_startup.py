"""Start-up does only what serving needs: no PyAV, numpy or Pillow until a video or image is read, no PyJWT
until a JWT verifier is made, and prompts without their validators until first used."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt

from aleph_mcp import app
from aleph_mcp.cli import entry
from aleph_mcp.config import Settings
from aleph_mcp.server import create_server, wiring
from aleph_mcp.server.first_use import FirstUseClient
from aleph_mcp.server.prompts import prompts
from aleph_mcp.server.registration import lazy_prompt

from .conftest import make_settings

BUILD_THE_SERVER = """
import sys
from aleph_mcp.config import Settings
from aleph_mcp.server import create_server
create_server(Settings(_env_file=None, data_dir=sys.argv[1]))
print(" ".join(sorted({"av", "numpy", "PIL", "jwt", "rich"} & set(sys.modules))))
"""


def test_building_the_server_imports_no_video_image_or_jwt_library(tmp_path: Path) -> None:
    """PyAV, numpy and Pillow load at the first probe, thumbnail or local render, PyJWT with OAuth sign-in;
    none at start-up. Nor rich, which the SDK's constructor imports to configure logging (sdk.py)."""
    loaded = subprocess.run(
        [sys.executable, "-c", BUILD_THE_SERVER, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""


@pytest.mark.parametrize("index", range(len(prompts._entries)))
def test_a_lazily_built_prompt_is_what_the_sdk_would_build(index: int) -> None:
    """Name, title, description and every argument (its description, whether required) as from_function."""
    _, fn, _, options = prompts._entries[index]
    assert lazy_prompt(fn, **options).model_dump() == Prompt.from_function(fn, **options).model_dump()


async def test_a_lazily_built_prompt_still_validates_its_arguments() -> None:
    """A too-long style is refused at render, as by the SDK's own validator; a good call renders."""
    server = MCPServer("t")
    prompts.register(server)
    async with Client(server) as client:
        good = await client.get_prompt("restyle", {"video": "https://x.example/a.mp4", "style": "anime"})
        with pytest.raises(MCPError):
            await client.get_prompt("restyle", {"video": "https://x.example/a.mp4", "style": "x" * 301})
    assert "anime" in str(good.messages[0].content)


def test_serving_hands_the_warmed_up_certificates_to_the_http_client() -> None:
    """After `tls.warm_up()` (what `serve` does first), the client verifies with that one loaded context,
    which trusts the system's CA certificates; without it, httpx2 makes its own."""
    code = (
        "import ssl; from aleph_mcp.app import http_client; from aleph_mcp.config import Settings;"
        "from aleph_mcp.providers import tls; s = Settings(_env_file=None);"
        "before = tls.context(); tls.warm_up(); ctx = tls.context();"
        "print(before is None, isinstance(ctx, ssl.SSLContext), ctx.verify_mode == ssl.CERT_REQUIRED,"
        " ctx.check_hostname, ctx.cert_store_stats()['x509_ca'] > 0, tls.context() is ctx,"
        " http_client(s)._transport._pool._ssl_context is ctx)"  # httpx2's pool keeps the context it got
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["True"] * 7


async def test_the_server_makes_no_http_client_until_a_request_needs_one(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing tools, listing edits and a whole offline edit send nothing: no client (nor its CA
    certificates) is made for them."""
    made: list[httpx2.AsyncClient] = []

    def counted(settings: Settings) -> httpx2.AsyncClient:
        made.append(app.http_client(settings))
        return made[-1]

    monkeypatch.setattr(wiring, "http_client", counted)
    async with Client(create_server(make_settings(tmp_path, default_provider="local"))) as client:
        await client.list_tools()
        started = await client.call_tool("edit_video", {"prompt": "invert", "video": str(clip)})
        edit_id = (started.structured_content or {})["edit_id"]
        ended = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 30})
        await client.call_tool("list_edits", {})
    assert (ended.structured_content or {})["status"] == "succeeded"
    assert made == []


async def test_a_first_use_client_is_made_once_at_its_first_request_and_closed_with_it() -> None:
    """Its first attribute access makes the one real client, which answers; closing closes that client,
    and closing one never made does nothing."""
    seen: list[str] = []
    made: list[httpx2.AsyncClient] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, text="ok")

    def make() -> httpx2.AsyncClient:
        made.append(httpx2.AsyncClient(transport=httpx2.MockTransport(answer)))
        return made[-1]

    unused = FirstUseClient(make)
    await unused.aclose()
    assert not unused.made and made == []
    lazy = FirstUseClient(make)
    first = await lazy.as_client().get("https://api.example.com/one")
    second = await lazy.as_client().get("https://api.example.com/two")
    assert (first.text, second.text) == ("ok", "ok") and len(made) == 1 and lazy.made
    assert seen == ["https://api.example.com/one", "https://api.example.com/two"]
    await lazy.aclose()
    assert made[0].is_closed


def test_serving_starts_without_collections_and_serves_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `python -m aleph_mcp`, no cyclic collection runs while the server is built; it serves with
    collections back on and what the start-up made frozen (never scanned again)."""
    collections: list[str] = []
    seen: list[tuple[bool, int, int]] = []

    def count(phase: str, info: dict[str, int]) -> None:
        collections.append(phase)

    def serve(*_args: object) -> None:
        seen.append((gc.isenabled(), gc.get_freeze_count(), len(collections)))

    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(anyio, "run", serve)  # what _serve runs the server with
    gc.callbacks.append(count)
    gc.disable()  # as `python -m aleph_mcp` starts (__main__.py)
    try:
        assert entry.main([]) == 0
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.enable()
    assert seen == [(True, seen[0][1], 0)] and seen[0][1] > 0


def test_a_command_of_python_m_aleph_mcp_runs_with_collections_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m aleph_mcp` turns collections off before loading the command line; a command other than
    serve turns them back on first."""
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "data"))
    gc.disable()
    try:
        assert entry.main(["list", "--json"]) == 0
        assert gc.isenabled()
    finally:
        gc.enable()
