"""A fake Krea API: Runway Aleph create, jobs (read, cancel) and multipart asset uploads."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Literal

import httpx2

from .base import FakeAPI, FakeTask, Recorded
from .multipart import FormPart, form_fields

CREATE = "/generate/video/runway/aleph"
ALLOWED_KEYS = frozenset(
    {
        "prompt",
        "init_video",
        "init_image_url",
        "startImage",
        "references",
        "ratio",
        "seed",
        "contentModeration",
    }
)
RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
SEED_MAX = 4_294_967_295
CANCELLABLE = frozenset({"queued", "processing"})


class FakeKrea(FakeAPI):
    """Bearer auth; every error body is `{"error": "<string>"}`; unknown create keys answer 422."""

    name = "krea"
    # our state -> vendor word; copied per instance so a test can change one fake's words
    words: dict[str, str] = {  # noqa: RUF012
        "queued": "queued",
        "running": "processing",
        "succeeded": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
    }
    vendor_words: tuple[str, ...] = (
        "backlogged",
        "queued",
        "scheduled",
        "processing",
        "sampling",
        "intermediate-complete",
        "completed",
        "failed",
        "cancelled",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.words = dict(type(self).words)
        # The docs disagree on where failure details live: top-level `error` or `result.error`.
        self.error_location: Literal["error", "result"] = "error"
        self.uploads: list[dict[str, FormPart]] = []
        # A plan's concurrent-job limit: a create beyond it answers 429, as Krea does. None: no limit.
        self.max_jobs: int | None = None
        self._jobs_lock = threading.Lock()  # the loopback server answers requests on several threads

    def kind_of(self, recorded: Recorded) -> str:
        path, method = recorded.path, recorded.method
        if path.startswith("/files/"):
            return "file"
        if path == CREATE and method == "POST":
            return "create"
        if path.startswith("/jobs/") and method in ("GET", "DELETE"):
            return "status" if method == "GET" else "cancel"
        if path == "/assets" and method == "POST":
            return "upload"
        return "other"

    def unauthorized(self) -> httpx2.Response:
        return self.respond(401, {"error": "You are not authenticated."})

    def route(self, recorded: Recorded) -> httpx2.Response:
        kind = self.kind_of(recorded)
        if kind == "create":
            return self.create(recorded.body)
        if kind == "upload":
            return self.upload(recorded)
        task = self.tasks.get(recorded.path.removeprefix("/jobs/"))
        if kind in ("status", "cancel") and task is None:
            return self.respond(404, {"error": "Job not found"})
        if kind == "status" and task is not None:
            return self.respond(200, self.job(task, task.read()))
        if kind == "cancel" and task is not None:
            return self.cancel(task)
        return self.respond(404, {"error": f"Not found: {recorded.method} {recorded.path}"})

    def create(self, body: Any) -> httpx2.Response:
        unknown = sorted(set(body) - ALLOWED_KEYS) if isinstance(body, dict) else []
        if unknown:
            keys = ", ".join(f"'{key}'" for key in unknown)
            return self.respond(422, {"error": f"Unrecognized key(s) in object: {keys}"})
        problem = validate(body)
        if problem:
            return self.respond(400, {"error": problem})
        with self._jobs_lock:
            if self.max_jobs is not None and len(self.unfinished()) >= self.max_jobs:
                return self.respond(429, {"error": "Maximum number of concurrent jobs reached"})
            task = self.new_task(body)
        return self.respond(200, self.job(task, task.state))

    def unfinished(self) -> list[FakeTask]:
        return [t for t in list(self.tasks.values()) if t.state not in ("succeeded", "failed", "cancelled")]

    def job(self, task: FakeTask, state: str) -> dict[str, Any]:
        finished = state in ("succeeded", "failed", "cancelled")
        job: dict[str, Any] = {
            "job_id": task.task_id,
            "status": self.words[state],
            "created_at": "2025-01-15T10:30:00.000Z",
            "completed_at": "2025-01-15T10:33:05.000Z" if finished else None,
            "result": None,
        }
        if state == "succeeded":
            job["result"] = {"urls": [self.video_url(task)]}
        elif state == "failed":
            error = {"code": "generation_failed", "message": self.failure_message}
            if self.error_location == "error":
                job["error"] = error
            else:
                job["result"] = {"error": error}
        return job

    def cancel(self, task: FakeTask) -> httpx2.Response:
        word = self.words[task.state]
        if word not in CANCELLABLE:
            return self.respond(400, {"error": f"Job cannot be cancelled in status '{word}'"})
        task.cancelled = True
        return self.respond(200, self.job(task, "cancelled"))

    def upload(self, recorded: Recorded) -> httpx2.Response:
        parts = form_fields(recorded.headers.get("content-type", ""), recorded.body)
        if "file" not in parts:
            return self.respond(400, {"error": "Missing file"})
        asset_id = str(uuid.uuid4())
        self.uploads.append(parts)
        file, description = parts["file"], parts.get("description")
        body: dict[str, Any] = {
            "id": asset_id,
            "image_url": self.url(f"/files/assets/{asset_id}.mp4"),
            "uploaded_at": "2025-01-15T10:29:00.000Z",
            "width": None,
            "height": None,
            "size_bytes": len(file.content),
            "mime_type": file.content_type,
            "description": (description.content.decode() or None) if description else None,
            "metadata": {},
        }
        return self.respond(200, body)


def validate(body: Any) -> str | None:
    """Krea's 400 reasons for a create body (the schema in the OpenAPI copy)."""
    if not isinstance(body, dict):
        return "The request body is invalid: expected an object"
    for key in ("prompt", "init_video"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"The request body is invalid: '{key}' is required"
    if len(body["prompt"]) > 1000:
        return "The request body is invalid: 'prompt' must be at most 1000 characters"
    if "ratio" in body and body["ratio"] not in RATIOS:
        return f"The request body is invalid: 'ratio' must be one of {', '.join(RATIOS)}"
    seed = body.get("seed")
    if "seed" in body and (not isinstance(seed, int | float) or not 0 <= seed <= SEED_MAX):
        return "The request body is invalid: 'seed' must be between 0 and 4294967295"
    refs = body.get("references", [])
    if not isinstance(refs, list) or len(refs) > 1:
        return "The request body is invalid: 'references' takes at most 1 item"
    for ref in refs:
        if not isinstance(ref, dict) or set(ref) != {"type", "uri"} or ref["type"] != "image":
            return "The request body is invalid: a reference is {type: 'image', uri}"
    return None
