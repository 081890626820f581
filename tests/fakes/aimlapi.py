"""A fake AI/ML API: the universal `/v2/video/generations` create and status routes for runway/gen4_aleph."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import httpx2

from .base import FakeAPI, FakeTask, Recorded

GENERATIONS = "/v2/video/generations"
FRAME_SIZES = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672", "848:480", "640:480")
SEED_MAX = 4_294_967_295


class FakeAimlapi(FakeAPI):
    """Bearer auth; errors are `{message, path, requestId, statusCode, timestamp}`; 403 = out of credits."""

    name = "aimlapi"
    # our state -> vendor word; copied per instance so a test can change one fake's words
    words: dict[str, str] = {  # noqa: RUF012
        "queued": "queued",
        "running": "generating",
        "succeeded": "completed",
        "failed": "error",
    }
    # Every word the real API is known to use: the current schema plus the legacy waiting/active.
    vendor_words: tuple[str, ...] = (
        "queued",
        "waiting",
        "generating",
        "active",
        "completed",
        "error",
        "failed",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.words = dict(type(self).words)
        self.video_shape: Literal["object", "array"] = "object"  # universal vs legacy endpoint
        self.error_shape: Literal["object", "string"] = "object"
        self.out_of_credits = False

    def kind_of(self, recorded: Recorded) -> str:
        if recorded.path.startswith("/files/"):
            return "file"
        if recorded.path == GENERATIONS:
            return {"POST": "create", "GET": "status"}.get(recorded.method, "other")
        return "other"

    def unauthorized(self) -> httpx2.Response:
        return self.error(401, "Unauthorized: invalid or missing API key", GENERATIONS)

    def error(self, status: int, message: str, path: str) -> httpx2.Response:
        return self.respond(
            status,
            {
                "message": message,
                "path": path,
                "requestId": str(uuid.uuid4()),
                "statusCode": status,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def route(self, recorded: Recorded) -> httpx2.Response:
        kind = self.kind_of(recorded)
        if kind == "create":
            return self.create(recorded)
        if kind == "status":
            return self.status(recorded)
        return self.error(404, f"Cannot {recorded.method} {recorded.path}", recorded.path)

    def create(self, recorded: Recorded) -> httpx2.Response:
        if self.out_of_credits:
            return self.error(403, "Insufficient credits. Please top up your balance.", GENERATIONS)
        problem = validate(recorded.body)
        if problem:
            return self.error(400, f"Body validation error: {problem}", GENERATIONS)
        task = self.new_task(recorded.body)
        return self.respond(200, {"id": task.task_id, "status": self.words["queued"]})

    def status(self, recorded: Recorded) -> httpx2.Response:
        task_id = recorded.params.get("generation_id")
        if not task_id:
            return self.error(400, "Query validation error: generation_id Required", GENERATIONS)
        task = self.tasks.get(task_id)
        if task is None:
            return self.error(404, "Generation not found", GENERATIONS)
        return self.respond(200, self.generation(task))

    def generation(self, task: FakeTask) -> dict[str, Any]:
        state = task.read()
        body: dict[str, Any] = {
            "id": task.task_id,
            "status": self.words.get(state, "error"),
            "video": None,
            "error": None,
        }
        if state == "succeeded":
            url = self.video_url(task)
            body["video"] = {"url": url} if self.video_shape == "object" else [url]
            body["meta"] = {"usage": {"credits_used": 120000}}
        elif state in ("failed", "cancelled"):
            if self.error_shape == "object":
                body["error"] = {"name": "GenerationError", "message": self.failure_message}
            else:
                body["error"] = self.failure_message
        return body


def validate(body: Any) -> str | None:
    """What AI/ML API's body validation would complain about, in its Expected/Received style."""
    if not isinstance(body, dict):
        return "Expected object, received " + type(body).__name__
    if body.get("model") != "runway/gen4_aleph":
        return f"Invalid enum value. Expected 'runway/gen4_aleph', received '{body.get('model')}' at model"
    for key in ("prompt", "video_url"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"Expected string, received {type(body.get(key)).__name__} at {key}"
    if len(body["prompt"]) > 1000:
        return "String must contain at most 1000 character(s) at prompt"
    if "frame_size" in body and body["frame_size"] not in FRAME_SIZES:
        return f"Invalid enum value. Received '{body['frame_size']}' at frame_size"
    if "duration" in body and body["duration"] != 5:
        return "Invalid literal value, expected 5 at duration"
    seed = body.get("seed")
    if "seed" in body and (not isinstance(seed, int) or not 0 <= seed <= SEED_MAX):
        return "Number must be an integer between 0 and 4294967295 at seed"
    return validate_references(body.get("references"))


def validate_references(references: Any) -> str | None:
    if references is None:
        return None
    if not isinstance(references, list):
        return "Expected array at references"
    for item in references:
        if not isinstance(item, dict) or item.get("type") != "image" or not isinstance(item.get("url"), str):
            return "Expected {type: 'image', url: string} at references"
    return None
