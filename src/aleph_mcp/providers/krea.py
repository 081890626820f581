"""Krea adapter: Runway Aleph through `POST /generate/video/runway/aleph`, jobs under `/jobs/{id}`.

Krea rejects unknown body keys, so the create body holds only documented fields. Cancel works only
while a job is queued or processing; local files go through `POST /assets` (up to 75 MB).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from aleph_mcp.errors import AuthFailed, CannotCancel, FatalProviderError, RemoteNotFound
from aleph_mcp.models import EditRequest, RemoteStatus
from aleph_mcp.providers.base import Capabilities, ModelFacts, ProgressCallback, StatusTable
from aleph_mcp.providers.hosted import RUNWAY_PIXELS, HostedAdapter, file_size, runway_options, text_id
from aleph_mcp.redact import scrub

MB = 1024 * 1024
CREATE = "/generate/video/runway/aleph"
CANCEL_REFUSED = frozenset({400, 409, 422})  # Krea's answer to a DELETE on a job past processing

# "intermediate-complete" means a preview exists; the job is not finished yet.
STATUS = StatusTable(
    "krea",
    {
        "backlogged": "queued",
        "queued": "queued",
        "scheduled": "queued",
        "processing": "running",
        "sampling": "running",
        "intermediate-complete": "running",
        "completed": "succeeded",
        "failed": "failed",
        "cancelled": "cancelled",
    },
)

CAPABILITIES = Capabilities(
    webhooks=True,  # a callback URL in the create (see create_body / create_headers)
    models=("aleph",),
    aspect_ratios=frozenset(RUNWAY_PIXELS),  # sent as `ratio`
    max_prompt_chars=1000,
    seed=True,
    watermark=False,
    reference_image=True,
    can_cancel=True,
    can_upload=True,
    data_uri_max_bytes=None,
    url_max_bytes=75 * MB,
    upload_max_bytes=75 * MB,  # POST /assets
    typical_render="a few minutes (Krea does not state it; jobs are failed after 2 hours)",
)
MODEL_FACTS = {
    "aleph": ModelFacts(
        "Krea states no limit; Gen-4 Aleph processes only the first 5 s elsewhere (inferred).", 5
    ),
}


class KreaProvider(HostedAdapter):
    """Runway Aleph via Krea (https://api.krea.ai)."""

    name = "krea"
    capabilities = CAPABILITIES
    create_path = CREATE
    missing_id = "a create answer without a job_id"

    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """The create JSON; only documented keys, since Krea rejects unknown ones."""
        body = {"prompt": request.prompt, "init_video": request.video}
        return body | runway_options(request, ratio="ratio", reference="uri")

    def create_headers(self, request: EditRequest) -> dict[str, str]:
        # Krea takes its webhook as a header; it POSTs the job there at any terminal state.
        return {"X-Webhook-URL": request.callback_url} if request.callback_url else {}

    def task_id(self, answer: Any) -> str | None:
        return text_id(answer.get("job_id")) if isinstance(answer, Mapping) else None

    async def poll(self, task_id: str) -> RemoteStatus:
        body = await self.http.request("GET", job_path(task_id))
        if not isinstance(body, Mapping) or not isinstance(body.get("status"), str):
            raise self.http.malformed("a job without a status")
        word: str = body["status"]
        status = STATUS(word)
        if status == "succeeded":
            url = first_url(body.get("result"))
            if url is None:
                raise self.http.malformed("a finished task without an output URL")
            return RemoteStatus(status=status, output_url=url)
        reason = failure(body)
        if status == "failed" or (status == "cancelled" and reason is not None):
            code, message = reason or ("generation_failed", "Krea reported the job failed without a reason.")
            return RemoteStatus(
                status=status,
                error_code=scrub(code, self.http.secrets),
                error_message=scrub(message, self.http.secrets),
            )
        return RemoteStatus(status=status)

    async def cancel(self, task_id: str) -> None:
        try:
            await self.http.request("DELETE", job_path(task_id), allow_empty=True)
        except (AuthFailed, RemoteNotFound):
            raise
        except FatalProviderError as exc:
            if exc.status_code not in CANCEL_REFUSED:
                raise
            raise CannotCancel(
                "Krea cancels a job only while it is queued or processing; this one has moved past "
                f"that and will run to its end ({exc.message})."
            ) from None

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        size = file_size(path)
        mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
        if on_progress is not None:
            await on_progress(0, size)
        with open_binary(path) as stream:  # httpx2 reads it in chunks while sending
            body = await self.http.request("POST", "/assets", files={"file": (path.name, stream, mime)})
        url = body.get("image_url") if isinstance(body, Mapping) else None
        if not isinstance(url, str) or not url:
            raise self.http.malformed("an upload answer without an image_url")
        if on_progress is not None:
            await on_progress(size, size)
        return url


def job_path(task_id: str) -> str:
    return f"/jobs/{quote(task_id, safe='')}"


def first_url(result: Any) -> str | None:
    urls = result.get("urls") if isinstance(result, Mapping) else None
    first = urls[0] if isinstance(urls, list) and urls else None
    return first if isinstance(first, str) and first else None


def failure(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(code, message) of a failed job, or None when it gives no reason.

    Uncertain location: the job schema has a top-level `error {code, message}`, the lifecycle page
    says `result.error`; both are read, top-level first.
    """
    result = job.get("result")
    nested = result.get("error") if isinstance(result, Mapping) else None
    for error in (job.get("error"), nested):
        if isinstance(error, Mapping):
            code, message = error.get("code"), error.get("message")
            if message or code:
                code_text = str(code) if code else "generation_failed"
                return code_text, str(message) if message else f"Krea reported the job failed ({code_text})."
        elif isinstance(error, str) and error.strip():
            return "generation_failed", error
    return None


def open_binary(path: Path) -> BinaryIO:
    return path.open("rb")
