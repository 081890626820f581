"""Shared machinery for the fake vendor APIs.

A fake is a callable `(httpx2.Request) -> httpx2.Response`. It records every request, keeps tasks that
advance one step through `steps` each time their status is read, serves result files under
`/files/...`, checks the vendor's auth header, and can inject faults: one-shot or repeated `Fault`s, or
random ones from a `chaos` source (tests/fakes/chaos.py).
"""

from __future__ import annotations

import io
import json
import struct
import threading
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import av
import httpx2
import numpy as np

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DEFAULT_STEPS: tuple[State, ...] = ("queued", "running", "succeeded")


def _tiny_mp4() -> bytes:
    """A real (playable) MP4 of a few frames: results must open as video to be archived."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


FAKE_VIDEO = _tiny_mp4()


def _tiny_png(width: int = 8, height: int = 8) -> bytes:
    """A real (decodable) PNG, so vendor thumbnails go through the same path as in production."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 40, 40]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


FAKE_IMAGE = _tiny_png()


@dataclass
class Recorded:
    method: str
    host: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any  # decoded JSON, raw bytes for multipart, None when empty

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class Fault:
    """One injected failure, consumed by the first request whose kind matches.

    kind: "create", "status", "cancel", "upload", "file" or "any". Either an HTTP answer (`status`,
    `body`, `headers`), a transport error (`raise_exc`, an httpx2 exception class: on loopback the
    connection is closed without an answer), or a hang (`hang` seconds without an answer, then the
    connection is closed; with `partial`, the headers and that many body bytes go out first, and with
    `trickle`, one more byte every `trickle` seconds, never the last: a slow answer that never times out).
    `after`: the fake acts on the request first (the task is created, the status read advances) and only
    the answer is lost. `match`: only requests whose URL contains it. `times`: how many requests it hits
    (0: every matching request, until removed).
    """

    kind: str = "any"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raise_exc: type[httpx2.TransportError] | None = None
    hang: float | None = None
    partial: int | None = None
    trickle: float | None = None
    after: bool = False
    match: str = ""
    times: int = 1


class Held(httpx2.ReadTimeout):
    """A hang: under MockTransport the client sees a read timeout; on loopback (server.py) the server holds
    the connection for `seconds` (sending `partial` bytes of `response` first, then trickling), then
    closes it."""

    def __init__(
        self,
        request: httpx2.Request,
        *,
        kind: str,
        seconds: float,
        response: httpx2.Response | None = None,
        partial: int | None = None,
        trickle: float | None = None,
    ) -> None:
        super().__init__("injected hang", request=request)
        self.kind, self.seconds, self.response, self.partial = kind, seconds, response, partial
        self.trickle = trickle


@dataclass
class Exchange:
    """One request as the loopback server saw it (server.py): who asked, when it started and ended."""

    mount: str  # the path prefix it came in under, e.g. "/runway"
    method: str
    path: str  # below the mount, with the query
    kind: str
    peer_port: int
    started: float  # time.monotonic()
    ended: float
    outcome: str  # "answered", "dropped" or "held"


@dataclass
class FakeTask:
    task_id: str
    body: Any
    steps: tuple[State, ...]
    position: int = 0
    cancelled: bool = False

    @property
    def state(self) -> State:
        if self.cancelled:
            return "cancelled"
        return self.steps[min(self.position, len(self.steps) - 1)]

    def read(self) -> State:
        """The state a status read reports; each read moves the task one step on."""
        state = self.state
        self.position += 1
        return state


class FakeAPI:
    """Base for one vendor. Subclasses implement `route` and the vendor-shaped bodies."""

    name = "fake"

    def __init__(
        self,
        api_key: str = "test-key-0123456789",
        *,
        steps: tuple[State, ...] = DEFAULT_STEPS,
        failure_message: str = "The render failed: content moderation flagged the prompt",
        video_bytes: bytes = FAKE_VIDEO,
        image_bytes: bytes = FAKE_IMAGE,
    ) -> None:
        self.api_key = api_key
        self.steps = steps
        self.failure_message = failure_message
        self.video_bytes = video_bytes
        self.image_bytes = image_bytes
        self.requests: list[Recorded] = []
        self.tasks: dict[str, FakeTask] = {}
        self.faults: deque[Fault] = deque()
        self.origin = "http://fake.invalid"
        self.mount = ""  # path prefix when served by server.py, e.g. "/kie"
        # Random faults (chaos.py): called for every request no queued Fault took.
        self.chaos: Callable[[str, Recorded], Fault | None] | None = None
        # The steps of a new task, from its create body (e.g. a render that fails); None: `steps`.
        self.steps_for: Callable[[Any], tuple[State, ...]] | None = None
        self.latency = 0.0  # seconds the loopback server waits before answering
        self.exchanges: list[Exchange] = []  # filled by the loopback server
        self.holding: Counter[str] = Counter()  # hangs in progress on loopback, by request kind
        self.released = threading.Event()  # set to end every hang at once

    # -- test helpers -----------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def calls(self, kind: str) -> list[Recorded]:
        return [r for r in self.requests if self.kind_of(r) == kind]

    @property
    def creates(self) -> list[Recorded]:
        return self.calls("create")

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)

    # -- dispatch ---------------------------------------------------------------------------------
    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        recorded = self.record(request)
        kind = self.kind_of(recorded)
        fault = self._take_fault(kind, str(request.url))
        if fault is None and self.chaos is not None:
            fault = self.chaos(kind, recorded)
        if fault is None:
            return self.answer(kind, recorded, request)
        real = self.answer(kind, recorded, request) if fault.after or fault.partial is not None else None
        if fault.hang is not None:
            raise Held(
                request,
                kind=kind,
                seconds=fault.hang,
                response=real,
                partial=fault.partial,
                trickle=fault.trickle,
            )
        if fault.raise_exc is not None:
            raise fault.raise_exc("injected fault", request=request)
        return self.respond(fault.status, fault.body, fault.headers)

    def answer(self, kind: str, recorded: Recorded, request: httpx2.Request) -> httpx2.Response:
        """What the vendor answers when nothing goes wrong."""
        if kind == "file":
            return self.serve_file(recorded.path)
        if not self.authorized(request):
            return self.unauthorized()
        return self.route(recorded)

    def classify(self, request: httpx2.Request) -> str:
        """The kind of a request, without recording it."""
        return self.kind_of(Recorded(request.method, request.url.host, request.url.path, {}, {}, None))

    def record(self, request: httpx2.Request) -> Recorded:
        content = request.read()
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except (ValueError, UnicodeDecodeError):
                body = content
        recorded = Recorded(
            method=request.method,
            host=request.url.host,
            path=request.url.path,
            params=dict(request.url.params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        self.requests.append(recorded)
        return recorded

    def _take_fault(self, kind: str, url: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.kind in (kind, "any") and fault.match in url:
                if fault.times == 1:
                    self.faults.remove(fault)
                elif fault.times > 1:
                    fault.times -= 1
                return fault
        return None

    def serve_file(self, path: str) -> httpx2.Response:
        if path.endswith(".mp4"):
            return httpx2.Response(200, content=self.video_bytes, headers={"content-type": "video/mp4"})
        return httpx2.Response(200, content=self.image_bytes, headers={"content-type": "image/png"})

    def new_task(self, body: Any) -> FakeTask:
        steps = self.steps_for(body) if self.steps_for is not None else self.steps
        task = FakeTask(task_id=str(uuid.uuid4()), body=body, steps=steps)
        self.tasks[task.task_id] = task
        return task

    def url(self, path: str) -> str:
        """An absolute URL on this fake (works under MockTransport and on loopback)."""
        return f"{self.origin}{self.mount}{path}"

    def video_url(self, task: FakeTask) -> str:
        return f"{self.origin}{self.mount}/files/{task.task_id}.mp4"

    def image_url(self, task: FakeTask) -> str:
        return f"{self.origin}{self.mount}/files/{task.task_id}.png"

    @staticmethod
    def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx2.Response:
        if body is None:
            return httpx2.Response(status, headers=headers or {})
        if isinstance(body, bytes | str):
            return httpx2.Response(status, content=body, headers=headers or {})
        return httpx2.Response(status, json=body, headers=headers or {})

    # -- vendor specifics -------------------------------------------------------------------------
    def kind_of(self, recorded: Recorded) -> str:
        """'create', 'status', 'cancel', 'upload', 'file' or 'other'."""
        if recorded.path.startswith("/files/"):
            return "file"
        raise NotImplementedError

    def authorized(self, request: httpx2.Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def unauthorized(self) -> httpx2.Response:
        return self.respond(401, {"error": "Invalid API key"})

    def route(self, recorded: Recorded) -> httpx2.Response:
        raise NotImplementedError
