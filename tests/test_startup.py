"""Start-up does only what serving needs: no PyAV, numpy or Pillow until a video or image is read, no PyJWT
until a JWT verifier is made, and prompts without their validators until first used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt

from aleph_mcp.server.prompts import prompts
from aleph_mcp.server.registration import lazy_prompt

BUILD_THE_SERVER = """
import sys
from aleph_mcp.config import Settings
from aleph_mcp.server import create_server
create_server(Settings(_env_file=None, data_dir=sys.argv[1]))
print(" ".join(sorted({"av", "numpy", "PIL", "jwt"} & set(sys.modules))))
"""


def test_building_the_server_imports_no_video_image_or_jwt_library(tmp_path: Path) -> None:
    """PyAV, numpy and Pillow load at the first probe, thumbnail or local render, PyJWT with OAuth sign-in;
    none at start-up."""
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
