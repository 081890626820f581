"""Shared machinery for the fake vendor APIs.

A fake is a callable `(httpx2.Request) -> httpx2.Response`. It records every request, keeps tasks that
advance one step through `steps` each time their status is read, serves result files under
`/files/...`, checks the vendor's auth header, and can inject one-shot faults.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DEFAULT_STEPS: tuple[State, ...] = ("queued", "running", "succeeded")
FAKE_VIDEO = b"\x00\x00\x00\x18ftypmp42fake-video-bytes" + bytes(range(256)) * 4
FAKE_IMAGE = b"\x89PNG\r\n\x1a\nfake-thumbnail"


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
    `body`, `headers`) or a transport error (`raise_exc`, an httpx2 exception class).
    """

    kind: str = "any"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raise_exc: type[httpx2.TransportError] | None = None


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
        fault = self._take_fault(kind)
        if fault is not None:
            if fault.raise_exc is not None:
                raise fault.raise_exc("injected fault", request=request)
            return self.respond(fault.status, fault.body, fault.headers)
        if kind == "file":
            return self.serve_file(recorded.path)
        if not self.authorized(request):
            return self.unauthorized()
        return self.route(recorded)

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

    def _take_fault(self, kind: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.kind in (kind, "any"):
                self.faults.remove(fault)
                return fault
        return None

    def serve_file(self, path: str) -> httpx2.Response:
        if path.endswith(".mp4"):
            return httpx2.Response(200, content=self.video_bytes, headers={"content-type": "video/mp4"})
        return httpx2.Response(200, content=self.image_bytes, headers={"content-type": "image/png"})

    def new_task(self, body: Any) -> FakeTask:
        task = FakeTask(task_id=str(uuid.uuid4()), body=body, steps=self.steps)
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
