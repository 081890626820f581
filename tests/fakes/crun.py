"""A fake crun.ai: CreateTask / TaskInfo with `x-api-key` auth and `{code, message, data}` envelopes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

from .base import FakeAPI, FakeTask, Recorded, State

CREATE = "/api/v1/client/job/CreateTask"
TASK_INFO = "/api/v1/client/job/TaskInfo"
MODEL = "runway/gen-4-aleph"
TOP_LEVEL = {"model", "input", "callback_url"}
# Inferred input names (crun's Aleph page lost them); only these are accepted, so unconfirmed ones show.
INPUT_FIELDS = {"prompt", "video_url"}


class FakeCrun(FakeAPI):
    """crun.ai as documented: errors come as HTTP 200 with the envelope `code` (see `errors_as_http`)."""

    name = "crun"
    words: Mapping[str, str] = {
        "queued": "pending",
        "running": "running",
        "succeeded": "success",
        "failed": "failed",
    }
    failure_code = 501  # result.code on a failed task ("Generation Failed")
    failure_field = "result"  # where a failure's reason goes: "result" (result.message), "error", "envelope"
    errors_as_http = False  # True: answer errors with the HTTP status too, not just the envelope code

    def kind_of(self, recorded: Recorded) -> str:
        if recorded.path.startswith("/files/"):
            return "file"
        return {CREATE: "create", TASK_INFO: "status"}.get(recorded.path, "other")

    def authorized(self, request: httpx2.Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    def unauthorized(self) -> httpx2.Response:
        return self.error(401, "Unauthorized: the API key is missing or invalid")

    def route(self, recorded: Recorded) -> httpx2.Response:
        kind = self.kind_of(recorded)
        if kind == "create" and recorded.method == "POST":
            return self.create(recorded.body)
        if kind == "status" and recorded.method == "GET":
            return self.status(recorded.params.get("task_id", ""))
        return self.respond(404, {"code": 404, "message": "Not Found", "data": None})

    # -- endpoints --------------------------------------------------------------------------------
    def create(self, body: Any) -> httpx2.Response:
        problem = self.invalid(body)
        if problem:
            return self.error(422, problem)
        task = self.new_task(body)
        return self.ok({"task_id": task.task_id})

    @staticmethod
    def invalid(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return "Validation error: model and input are required"
        if body.get("model") != MODEL:
            return f"Validation error: unsupported model {body.get('model')!r}"
        unknown = (set(body) - TOP_LEVEL) | (set(body["input"]) - INPUT_FIELDS)
        if unknown:
            return f"Validation error: unexpected fields {', '.join(sorted(unknown))}"
        for key in sorted(INPUT_FIELDS):
            value = body["input"].get(key)
            if not isinstance(value, str) or not value.strip():
                return f"Validation error: input.{key} is required"
        return None

    def status(self, task_id: str) -> httpx2.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return self.error(404, "Task not found")
        state = task.read()
        data = self.task_data(task, state)
        message = (
            self.failure_message if state == "failed" and self.failure_field == "envelope" else "success"
        )
        return self.respond(200, {"code": 200, "message": message, "data": data})

    def task_data(self, task: FakeTask, state: State) -> dict[str, Any]:
        done = state in ("succeeded", "failed")
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "provider": "Runway",
            "model_version": "gen-4-aleph",
            "status": self.words[state],
            "param": {
                "model": MODEL,
                "callback_url": task.body.get("callback_url"),
                "input": task.body["input"],
            },
            "create_at": 1768900378,
            "result": None,
            "duration_s": 222 if done else None,
            "complete_at": 1768900600 if done else None,
            "source": "api",
        }
        if state == "succeeded":
            data["result"] = {"code": 200, "message": "success", "media_urls": [self.video_url(task)]}
            data["credits"] = 6
        elif state == "failed" and self.failure_field == "result":
            data["result"] = {"code": self.failure_code, "message": self.failure_message}
        elif state == "failed" and self.failure_field == "error":
            data["error"] = self.failure_message
        return data

    # -- envelopes --------------------------------------------------------------------------------
    def ok(self, data: Any) -> httpx2.Response:
        return self.respond(200, {"code": 200, "message": "success", "data": data})

    def error(self, code: int, message: str) -> httpx2.Response:
        return self.respond(
            code if self.errors_as_http else 200, {"code": code, "message": message, "data": None}
        )
