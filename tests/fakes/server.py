"""Serve fake vendor APIs on 127.0.0.1 for end-to-end tests (a real HTTP server in a thread).

Each fake is mounted under `/<name>`, so one server carries all five: a provider's base URL in the
server's configuration is `http://127.0.0.1:<port>/<name>`. One fake may be mounted under several
names (each process of a multi-process test gets its own base URL, so its requests can be told apart).

Injected faults play out on the wire: a transport error closes the connection without an answer, and
a `Held` hang keeps the connection open without an answer (after a partial body, for `partial`) until
its time is up, the client gives up, or the fake is released; then the connection is closed.
Every request is logged in its fake's `exchanges` with its start, end and the client's port.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

from .base import Exchange, FakeAPI, Held


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, about 40 ms per answer on a kept-alive connection.
    disable_nagle_algorithm = True
    fakes: Mapping[str, FakeAPI] = {}

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return

    def _serve(self) -> None:
        started = time.monotonic()
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
        if fake.latency:
            time.sleep(fake.latency)
        outcome = self._exchange(fake, request)
        fake.exchanges.append(
            Exchange(
                mount=f"/{prefix}",
                method=self.command,
                path=f"/{rest}",
                kind=fake.classify(request),
                peer_port=self.client_address[1],
                started=started,
                ended=time.monotonic(),
                outcome=outcome,
            )
        )

    def _exchange(self, fake: FakeAPI, request: httpx2.Request) -> str:
        try:
            response = fake(request)
        except Held as held:
            self._hold(fake, held)
            return "held"
        except httpx2.TransportError:
            self._drop()
            return "dropped"
        self._send(response, response.read())
        return "answered"

    def _send(self, response: httpx2.Response, content: bytes, length: int | None = None) -> None:
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(content) if length is None else length))
        self.end_headers()
        self.wfile.write(content)
        self.wfile.flush()

    def _hold(self, fake: FakeAPI, held: Held) -> None:
        """Keep the client waiting: no answer (or part of one) until time is up or the client leaves."""
        content, sent = b"", 0
        if held.response is not None and held.partial is not None:
            content = held.response.read()
            # Never the whole body: a stall that sent it all (a file smaller than `partial`) would look
            # complete to the client, which then reuses a connection this handler no longer reads.
            sent = max(0, min(held.partial, len(content) - 1))
            self._send(held.response, content[:sent], length=len(content))
        fake.holding[held.kind] += 1
        try:
            deadline = next_byte = time.monotonic() + held.seconds
            if held.trickle is not None:
                next_byte = time.monotonic() + held.trickle
            while time.monotonic() < deadline and not fake.released.is_set():
                if self._client_left(min(0.02, deadline - time.monotonic())):
                    break
                if time.monotonic() >= next_byte and sent < len(content) - 1:  # never the last byte
                    self.wfile.write(content[sent : sent + 1])
                    self.wfile.flush()
                    sent += 1
                    next_byte += held.trickle or 0.0
        except OSError:  # the client went away mid-write
            pass
        finally:
            fake.holding[held.kind] -= 1
        self._drop()

    def _client_left(self, wait: float) -> bool:
        readable, _, _ = select.select([self.connection], [], [], max(0.0, wait))
        if not readable:
            return False
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except OSError:
            return True

    def _drop(self) -> None:
        """Close the connection without (the rest of) an answer."""
        self.close_connection = True
        self.connection.close()

    do_GET = do_POST = do_DELETE = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when many clients connect at once: they would see
    # timeouts the test did not inject.
    request_queue_size = 128


@contextmanager
def serve_fakes(fakes: Mapping[str, FakeAPI]) -> Iterator[str]:
    """Run the fakes on an ephemeral loopback port; yields the server origin."""
    for name, fake in fakes.items():
        fake.mount = fake.mount or f"/{name}"  # a fake under several names builds URLs with its first
    handler = type("Handler", (_Handler,), {"fakes": dict(fakes)})
    server = _Server(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        for fake in fakes.values():
            fake.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
