"""Serve fake vendor APIs on 127.0.0.1 for end-to-end tests (a real HTTP server in a thread).

Each fake is mounted under `/<name>`, so one server carries all five: a provider's base URL in the
server's configuration is `http://127.0.0.1:<port>/<name>`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

from .base import FakeAPI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fakes: Mapping[str, FakeAPI] = {}

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        prefix, _, rest = self.path.lstrip("/").partition("/")
        fake = self.fakes.get(prefix)
        if fake is None:
            self.send_error(404)
            return
        host = self.headers.get("host", "127.0.0.1")
        request = httpx2.Request(
            self.command, f"http://{host}/{rest}", headers=dict(self.headers.items()), content=body
        )
        try:
            response = fake(request)
        except httpx2.TransportError:
            # An injected transport fault: drop the connection without an answer.
            self.close_connection = True
            self.connection.close()
            return
        content = response.read()
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_DELETE = do_PUT = _serve


@contextmanager
def serve_fakes(fakes: Mapping[str, FakeAPI]) -> Iterator[str]:
    """Run the fakes on an ephemeral loopback port; yields the server origin."""
    for name, fake in fakes.items():
        fake.mount = f"/{name}"
    handler = type("Handler", (_Handler,), {"fakes": dict(fakes)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
