"""A fake kie.ai: Aleph generate / record-info, the file-stream upload host, `{code, msg, data}` envelopes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2

from .base import FakeAPI, FakeTask, Recorded, State
from .multipart import FormPart, form_fields

CREATE = "/api/v1/aleph/generate"
RECORD_INFO = "/api/v1/aleph/record-info"
RECORD_DETAIL = "/api/v1/aleph/record-detail"
UPLOAD = "/api/file-stream-upload"
RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
REQUIRED = ("prompt", "videoUrl")
OPTIONAL = ("callBackUrl", "waterMark", "uploadCn", "aspectRatio", "seed", "referenceImage")


class FakeKie(FakeAPI):
    """kie.ai as documented: errors come as HTTP 200 with the envelope `code` (see `errors_as_http`)."""

    name = "kie"
    # our state -> successFlag; kie reports a failure as 0 plus errorCode/errorMessage (2/3 in other kie APIs)
    words: Mapping[str, str] = {"queued": "0", "running": "0", "succeeded": "1", "failed": "0"}
    failure_code = 400  # errorCode on a failed task
    errors_as_http = False  # True: answer errors with the HTTP status too, not just the envelope code
    status_paths: tuple[str, ...] = (RECORD_INFO,)  # set to (RECORD_DETAIL,) to play the doc-error case

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploads: list[dict[str, FormPart]] = []

    def kind_of(self, recorded: Recorded) -> str:
        if recorded.path.startswith("/files/"):
            return "file"
        kinds = {CREATE: "create", RECORD_INFO: "status", RECORD_DETAIL: "status", UPLOAD: "upload"}
        return kinds.get(recorded.path, "other")

    def unauthorized(self) -> httpx2.Response:
        return self.error(401, "You do not have access permissions")

    def route(self, recorded: Recorded) -> httpx2.Response:
        kind = self.kind_of(recorded)
        if kind == "create" and recorded.method == "POST":
            return self.create(recorded.body)
        if kind == "status" and recorded.method == "GET" and recorded.path in self.status_paths:
            return self.status(recorded.params.get("taskId", ""))
        if kind == "upload" and recorded.method == "POST":
            return self.upload(recorded)
        return self.respond(404, {"code": 404, "msg": "Not Found", "data": None})

    # -- endpoints --------------------------------------------------------------------------------
    def create(self, body: Any) -> httpx2.Response:
        problem = self.invalid(body)
        if problem:
            return self.error(422, problem)
        task = self.new_task(body)
        return self.ok({"taskId": task.task_id})

    def invalid(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Invalid request parameters"
        for key in REQUIRED:
            if not isinstance(body.get(key), str) or not body[key].strip():
                return f"{key} is required"
        unknown = set(body) - set(REQUIRED) - set(OPTIONAL)
        if unknown:  # stricter than kie, which ignores them: a misspelt field should fail loudly here
            return f"Unknown parameters: {', '.join(sorted(unknown))}"
        if "aspectRatio" in body and body["aspectRatio"] not in RATIOS:
            return "aspectRatio must be one of 16:9, 9:16, 4:3, 3:4, 1:1, 21:9"
        if "seed" in body and (not isinstance(body["seed"], int) or isinstance(body["seed"], bool)):
            return "seed must be an integer"
        if len(body["prompt"]) > 2048:
            return "prompt cannot exceed 2048 characters"
        return None

    def status(self, task_id: str) -> httpx2.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return self.error(404, "Task not found")
        return self.ok(self.task_data(task, task.read()))

    def task_data(self, task: FakeTask, state: State) -> dict[str, Any]:
        word = self.words[state]
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "paramJson": json.dumps(task.body),
            "response": None,
            "completeTime": None,
            "createTime": "2026-07-01T10:00:00Z",
            "successFlag": int(word) if word.lstrip("-").isdigit() else word,
            "errorCode": 0,
            "errorMessage": "",
        }
        if state == "succeeded":
            data["response"] = {
                "taskId": task.task_id,
                "resultVideoUrl": self.video_url(task),
                "resultImageUrl": self.image_url(task),
            }
            data["completeTime"] = "2026-07-01T10:05:00Z"
        elif state == "failed":
            data.update(errorCode=self.failure_code, errorMessage=self.failure_message)
            data["completeTime"] = "2026-07-01T10:01:00Z"
        return data

    def upload(self, recorded: Recorded) -> httpx2.Response:
        form = form_fields(recorded.headers.get("content-type", ""), recorded.body)
        if "file" not in form or "uploadPath" not in form:
            return self.error(400, "file and uploadPath are required")
        self.uploads.append(form)
        name = form["fileName"].content.decode() if "fileName" in form else form["file"].filename or "upload"
        path = f"{form['uploadPath'].content.decode()}/{name}"
        data = {
            "fileName": name,
            "filePath": path,
            "downloadUrl": self.url(f"/files/{path}"),
            "fileSize": len(form["file"].content),
            "mimeType": form["file"].content_type,
            "uploadedAt": "2026-07-01T10:00:00.000Z",
        }
        envelope = {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data}
        return self.respond(200, envelope)

    # -- envelopes --------------------------------------------------------------------------------
    def ok(self, data: Any) -> httpx2.Response:
        return self.respond(200, {"code": 200, "msg": "success", "data": data})

    def error(self, code: int, msg: str) -> httpx2.Response:
        return self.respond(code if self.errors_as_http else 200, {"code": code, "msg": msg, "data": None})
