"""A real uvicorn serving aleph-mcp's HTTP app on 127.0.0.1 inside the test's event loop, and a JWKS host."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from aleph_mcp.config import Settings
from aleph_mcp.server.http import build_http_app


def loopback_socket() -> socket.socket:
    """A socket bound to an ephemeral loopback port, for `uvicorn.Server.serve(sockets=[...])`.

    Made with IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections whose socket says TCP, and a plain
    `socket.socket()` says 0. Without it every answer waits about 40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def served_http(settings: Settings, *, public: bool = False) -> AsyncIterator[str]:
    """aleph-mcp over Streamable HTTP on an ephemeral loopback port; yields the base URL (no path).
    With `public`, that URL is also ALEPH_MCP_PUBLIC_URL (webhooks come back to it)."""
    sock = loopback_socket()
    port = sock.getsockname()[1]
    if public:
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = build_http_app(settings, "127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


@asynccontextmanager
async def http_client(base: str, token: str | None = None, **options: Any) -> AsyncIterator[Client]:
    """The SDK's Streamable HTTP client, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), **options) as client,
    ):
        yield client


@contextmanager
def served_json(document: dict[str, Any]) -> Iterator[str]:
    """One JSON document at every path of an ephemeral loopback HTTP server (a JWKS endpoint)."""
    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
