"""A fake of Runway's API (api.dev.runwayml.com, X-Runway-Version 2024-11-06) for video_to_video.

Shapes follow providers.md section 5: create answers `{"id"}`, tasks carry upper-case status words,
errors are `{"error": "..."}`. Uploads hand out a presigned-POST slot on `/upload-bucket`, which
stands in for the storage host: it takes no auth and answers 204.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import httpx2

from .base import FakeAPI, Recorded, State
from .multipart import parse_multipart

API_VERSION = "2024-11-06"
ALEPH2_RATIOS = ("16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "21:9")
GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
_COMMON_KEYS = ("model", "videoUri", "promptText", "seed", "ratio", "contentModeration")
ALLOWED_KEYS = {
    "aleph2": {*_COMMON_KEYS, "targetAspectRatio", "keyframes"},
    "gen4_aleph": {*_COMMON_KEYS, "references"},
}
# Runway takes only HTTPS URLs; plain http is allowed on loopback so served fakes can be inputs.
URI_PREFIXES = ("https://", "runway://", "data:", "http://127.0.0.1", "http://localhost")
VENDOR_WORDS = ("PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
BUCKET = "/upload-bucket"
SEED_MAX = 4_294_967_295


class FakeRunway(FakeAPI):
    name = "runway"
    words: dict[str, str] = {  # noqa: RUF012 -- tests replace it per instance
        "queued": "PENDING",
        "running": "RUNNING",
        "succeeded": "SUCCEEDED",
        "failed": "FAILED",
        "cancelled": "CANCELLED",
    }
    # Every word Runway can send; THROTTLED is what `queued` reads when a test overrides `words`.
    vendor_words: ClassVar[tuple[str, ...]] = VENDOR_WORDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.words = dict(self.words)  # per-instance copy: overrides never leak
        self.unavailable: set[str] = set()  # models answering 403 "Model variant X is not available"
        self.progress = 0.42
        self.failure_code: str | None = "SAFETY.INPUT.TEXT"
        self.previews = True  # include the undocumented `previewUrls`
        self.slots: dict[str, dict[str, str]] = {}  # upload key -> issued fields
        self.uploads: list[dict[str, Any]] = []  # what arrived at the bucket
        self.deleted: list[str] = []  # finished tasks a DELETE destroyed (the output is gone)
        # Runway's own cost: `estimatedCost` while a task runs, `cost` once it ended (0 when refunded).
        self.credits: Any = 75
        self.refunded = True  # failed and cancelled tasks cost 0 credits

    # -- dispatch ---------------------------------------------------------------------------------
    def kind_of(self, recorded: Recorded) -> str:
        path, method = recorded.path, recorded.method
        if path.startswith("/files/"):
            return "file"
        if path == BUCKET:
            return "upload"
        if path == "/v1/uploads" and method == "POST":
            return "upload_init"
        if path == "/v1/video_to_video" and method == "POST":
            return "create"
        if path.startswith("/v1/tasks/"):
            return {"GET": "status", "DELETE": "cancel"}.get(method, "other")
        return "other"

    def authorized(self, request: httpx2.Request) -> bool:
        if request.url.path == BUCKET:  # presigned: the policy in the fields is the credential
            return True
        return super().authorized(request)

    def unauthorized(self) -> httpx2.Response:
        return self.respond(401, {"error": "Invalid API key"})

    def route(self, recorded: Recorded) -> httpx2.Response:
        kind = self.kind_of(recorded)
        if kind == "upload":
            return self.bucket(recorded)
        if recorded.headers.get("x-runway-version") != API_VERSION:
            # Wording inferred; Runway refuses requests without a valid version header with a 400.
            return self.error(400, f"X-Runway-Version must be set to a valid version ({API_VERSION}).")
        if kind == "create":
            return self.create(recorded.body)
        if kind == "status":
            return self.status(recorded.path.rsplit("/", 1)[1])
        if kind == "cancel":
            return self.cancel(recorded.path.rsplit("/", 1)[1])
        if kind == "upload_init":
            return self.upload_slot(recorded.body)
        return self.error(404, "Not found")

    @classmethod
    def error(cls, status: int, message: str) -> httpx2.Response:
        return cls.respond(status, {"error": message})

    # -- create -----------------------------------------------------------------------------------
    def create(self, body: Any) -> httpx2.Response:
        if not isinstance(body, dict):
            return self.error(400, "Validation of body failed: expected an object")
        model = body.get("model")
        if model not in ALLOWED_KEYS:
            return self.error(400, f"Validation of body failed: model: invalid value {model!r}")
        if model in self.unavailable:
            return self.error(403, f"Model variant {model} is not available")
        problem = self.invalid(model, body)
        if problem:
            return self.error(400, f"Validation of body failed: {problem}")
        return self.respond(200, {"id": self.new_task(body).task_id})

    @staticmethod
    def invalid(model: str, body: dict[str, Any]) -> str | None:
        """The first reason Runway would refuse this body, or None."""
        unknown = set(body) - ALLOWED_KEYS[model]
        if unknown:
            return f"unrecognized key(s) {sorted(unknown)}"
        uri = body.get("videoUri")
        if not isinstance(uri, str) or not uri.startswith(URI_PREFIXES):
            return "videoUri: must be an HTTPS URL, a runway:// upload URI or a data URI"
        prompt = body.get("promptText")  # optional for aleph2, required for gen4_aleph
        if (prompt is not None or model == "gen4_aleph") and not _valid_prompt(prompt):
            return "promptText: must be a non-empty string of at most 1000 characters"
        seed = body.get("seed")
        if seed is not None and not _valid_seed(seed):
            return f"seed: must be an integer between 0 and {SEED_MAX}"
        if "targetAspectRatio" in body and body["targetAspectRatio"] not in ALEPH2_RATIOS:
            return f"targetAspectRatio: must be one of {', '.join(ALEPH2_RATIOS)}"
        if model == "gen4_aleph" and "ratio" in body and body["ratio"] not in GEN4_RATIOS:
            return f"ratio: must be one of {', '.join(GEN4_RATIOS)}"
        refs = body.get("references")
        if refs is not None and not _valid_references(refs):
            return 'references: at most one {"type": "image", "uri": string}'
        return None

    # -- tasks ------------------------------------------------------------------------------------
    def status(self, task_id: str) -> httpx2.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return self.error(404, "Task not found")
        state: State = task.read()
        body: dict[str, Any] = {"id": task_id, "createdAt": "2026-07-01T10:00:00Z"}
        body["status"] = self.words[state]
        if state == "running":
            body["progress"] = self.progress
            body["estimatedCost"] = {"credits": self.credits}
        elif state in ("failed", "cancelled", "succeeded"):
            spent = 0 if self.refunded and state != "succeeded" else self.credits
            body["cost"] = {"credits": spent}
        if state == "succeeded":
            body["output"] = [self.video_url(task)]
            if self.previews:
                body["previewUrls"] = [self.image_url(task)]
        elif state == "failed":
            body["failure"] = self.failure_message
            if self.failure_code is not None:
                body["failureCode"] = self.failure_code
        return self.respond(200, body)

    def cancel(self, task_id: str) -> httpx2.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return self.error(404, "Task not found")
        if task.state in ("queued", "running"):
            task.cancelled = True
        else:  # Runway's DELETE on a finished task deletes it and its output
            del self.tasks[task_id]
            self.deleted.append(task_id)
        return self.respond(204, None)

    # -- uploads ----------------------------------------------------------------------------------
    def upload_slot(self, body: Any) -> httpx2.Response:
        if not isinstance(body, dict) or not isinstance(body.get("filename"), str) or not body["filename"]:
            return self.error(400, "Validation of body failed: filename: Required")
        if body.get("type") != "ephemeral":
            return self.error(400, "Validation of body failed: type: must be 'ephemeral'")
        token = uuid.uuid4().hex
        key = f"uploads/{token}/{body['filename']}"
        fields = {"key": key, "policy": f"policy-{token}", "x-amz-signature": f"sig-{token}"}
        self.slots[key] = fields
        return self.respond(
            200, {"uploadUrl": self.url(BUCKET), "fields": fields, "runwayUri": f"runway://ephemeral/{token}"}
        )

    def bucket(self, recorded: Recorded) -> httpx2.Response:
        parts = parse_multipart(recorded.headers.get("content-type", ""), recorded.body)
        names = [part.name for part in parts]
        form = {part.name: part.content.decode() for part in parts if part.name != "file"}
        issued = self.slots.get(form.get("key", ""))
        if issued is None or any(form.get(k) != v for k, v in issued.items()):
            return self.respond(403, s3_error("AccessDenied", "Invalid according to Policy"))
        if names[-1:] != ["file"] or names.count("file") != 1:
            return self.respond(400, s3_error("InvalidArgument", "The file must be the last field"))
        file = parts[-1]
        self.uploads.append(
            {"fields": form, "order": names, "filename": file.filename, "content": file.content}
        )
        return self.respond(204, None)


def s3_error(code: str, message: str) -> str:
    """Storage hosts answer presigned POSTs with XML, not Runway's JSON."""
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"


def _valid_prompt(prompt: Any) -> bool:
    return isinstance(prompt, str) and 0 < len(prompt.encode("utf-16-le")) // 2 <= 1000


def _valid_seed(seed: Any) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX


def _valid_references(refs: Any) -> bool:
    def one(ref: Any) -> bool:
        return isinstance(ref, dict) and ref.get("type") == "image" and isinstance(ref.get("uri"), str)

    return isinstance(refs, list) and len(refs) <= 1 and all(one(r) for r in refs)
