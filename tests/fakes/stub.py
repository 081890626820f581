"""StubProvider: one configurable Provider for tests that need an adapter but no vendor behind it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aleph_mcp.models import EditRequest, RemoteStatus
from aleph_mcp.providers.base import Capabilities, PreparedCreate, ProgressCallback

Submit = Callable[[EditRequest], Awaitable[str]]
Poll = Callable[[str], Awaitable[RemoteStatus]]
Cancel = Callable[[str], Awaitable[None]]
Upload = Callable[[Path], Awaitable[str]]


@dataclass
class StubProvider:
    """A Provider that records every call and answers with whatever a test hands it.

    Each step can be replaced by an async function (`on_submit`, `on_poll`, `on_cancel`, `on_upload`),
    called after the call is recorded. Without one: submit answers task-1, task-2, ...; poll answers
    `status`; cancel does nothing; upload answers an https URL named after the file.
    """

    name: str = "stub"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(models=("aleph2",)))
    status: RemoteStatus = field(default_factory=lambda: RemoteStatus("running"))
    on_submit: Submit | None = None
    on_poll: Poll | None = None
    on_cancel: Cancel | None = None
    on_upload: Upload | None = None
    requests: list[EditRequest] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    uploads: list[Path] = field(default_factory=list)

    def describe_create(self, request: EditRequest) -> PreparedCreate:
        body = {"model": request.model, "prompt": request.prompt, "video": request.video}
        return PreparedCreate(
            method="POST",
            url=f"https://{self.name}.invalid/create",
            headers={"authorization": "***"},
            body=body,
        )

    async def submit(self, request: EditRequest) -> str:
        self.requests.append(request)
        if self.on_submit is not None:
            return await self.on_submit(request)
        return f"task-{len(self.requests)}"

    async def poll(self, task_id: str) -> RemoteStatus:
        self.polls.append(task_id)
        if self.on_poll is not None:
            return await self.on_poll(task_id)
        return self.status

    async def cancel(self, task_id: str) -> None:
        self.cancels.append(task_id)
        if self.on_cancel is not None:
            await self.on_cancel(task_id)

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        self.uploads.append(path)
        if self.on_upload is not None:
            return await self.on_upload(path)
        return f"https://cdn.example.com/uploads/{path.name}"
