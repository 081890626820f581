"""Task-speaking clients for the tests, built on the SDK's public surface, and the spec's message shapes.

- 2026-07-28 (SEP-2663): `TasksClient` is a `ClientExtension` that declares `io.modelcontextprotocol/tasks`
  and claims the `resultType: "task"` result, so `Client.call_tool` polls `tasks/get` to the final result;
  the models below are the SEP's `CreateTaskResult` and `tasks/get` result, closed to unknown fields.
- 2025-11-25: the SDK's `ClientSession` rejects a `CreateTaskResult` to `tools/call` before its caller sees
  it (mcp 2.3 `ClientSession.send_request` validates every `tools/call` result as `CallToolResult`), so
  `RawSession` speaks JSON-RPC itself over the SDK's stdio transport; results are checked against the
  SDK's 2025-11-25 task types and the spec text's field names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TextIO

import anyio
import mcp.types as types
from mcp import MCPError, StdioServerParameters
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client.stdio import stdio_client
from mcp.shared.message import SessionMessage
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]


class _Closed(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TaskFields(_Closed):
    """SEP-2663 `Task`: note the `*Ms` names (2025-11-25 says `ttl`, `pollInterval`)."""

    task_id: str
    status: TaskStatus
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class TaskCreated(types.Result, TaskFields):
    """SEP-2663 `CreateTaskResult`: `Result & Task`, flat, `resultType: "task"`."""

    model_config = ConfigDict(extra="forbid")
    result_type: Literal["task"]


class TaskSnapshot(TaskFields):
    """SEP-2663 `tasks/get` result: the task with `result` (completed) or `error` (failed) inlined."""

    meta: dict[str, Any] | None = Field(default=None, alias="_meta")
    result_type: Literal["complete"]
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Ack(_Closed):
    """SEP-2663's empty acknowledgement (`tasks/cancel`, `tasks/update`)."""

    meta: dict[str, Any] | None = Field(default=None, alias="_meta")
    result_type: Literal["complete"]


class TaskIdParams(types.RequestParams):
    task_id: str


class TaskRequest(types.Request[TaskIdParams, str]):
    """Any `tasks/*` request by task id (the method names are not in the SDK's 2026 tables)."""

    method: str
    params: TaskIdParams
    name_param = "taskId"


def task_request(method: str, task_id: str) -> TaskRequest:
    return TaskRequest(method=method, params=TaskIdParams(task_id=task_id))


class TasksClient(ClientExtension):
    """Declares the extension; `call_tool` resolves a task, polling `tasks/get` with `pause` between."""

    identifier = EXTENSION_ID

    def __init__(self, pause: Callable[[float], Awaitable[None]]) -> None:
        self.pause = pause
        self.polls: list[TaskSnapshot] = []

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self._resolve)]

    async def _resolve(self, created: TaskCreated, ctx: ClaimContext) -> types.CallToolResult:
        while True:
            snapshot = await ctx.session.send_request(
                task_request("tasks/get", created.task_id), TaskSnapshot
            )
            self.polls.append(snapshot)
            if snapshot.status == "completed" and snapshot.result is not None:
                return types.CallToolResult.model_validate(snapshot.result, by_name=False)
            if snapshot.status != "working":
                raise RuntimeError(f"task ended {snapshot.status}: {snapshot.status_message}")
            await self.pause((snapshot.poll_interval_ms or 1000) / 1000)


class RawSession:
    """JSON-RPC by hand over a transport's streams: one request at a time, notifications skipped."""

    def __init__(self, read: Any, write: Any) -> None:
        self.read, self.write, self.next_id = read, write, 0
        self.initialized: dict[str, Any] = {}

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result; an error response raises `MCPError` with its code and message."""
        self.next_id += 1
        message = types.JSONRPCRequest(jsonrpc="2.0", id=self.next_id, method=method, params=params)
        await self.write.send(SessionMessage(message=message))
        while True:
            received = await self.read.receive()
            if isinstance(received, Exception):
                raise received
            answer = received.message
            if isinstance(answer, types.JSONRPCResponse) and answer.id == self.next_id:
                result: dict[str, Any] = answer.result
                return result
            if isinstance(answer, types.JSONRPCError) and answer.id == self.next_id:
                raise MCPError.from_error_data(answer.error)

    async def initialize(self, version: str = "2025-11-25") -> None:
        self.initialized = await self.request(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        note = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
        await self.write.send(SessionMessage(message=note))


@asynccontextmanager
async def raw_stdio(
    env: dict[str, str], log: TextIO, version: str = "2025-11-25"
) -> AsyncIterator[RawSession]:
    """`python -m aleph_mcp` as a child process, initialized at `version` by a raw JSON-RPC session."""
    import sys

    params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)
    async with stdio_client(params, errlog=log) as (read, write):
        session = RawSession(read, write)
        with anyio.fail_after(30):
            await session.initialize(version)
        yield session
