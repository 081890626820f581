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

import httpx2

from aleph_mcp.errors import AuthFailed, CannotCancel, FatalProviderError, InvalidInput, RemoteNotFound
from aleph_mcp.models import AspectRatio, EditRequest, RemoteStatus
from aleph_mcp.providers._http import ProviderHTTP
from aleph_mcp.providers.base import Capabilities, PreparedCreate, ProgressCallback, StatusTable
from aleph_mcp.redact import scrub

MB = 1024 * 1024
CREATE = "/generate/video/runway/aleph"
CANCEL_REFUSED = frozenset({400, 409, 422})  # Krea's answer to a DELETE on a job past processing

# Our aspect ratios as Krea's `ratio` (Runway's pixel sizes).
RATIOS: dict[AspectRatio, str] = {
    "16:9": "1280:720",
    "9:16": "720:1280",
    "4:3": "1104:832",
    "3:4": "832:1104",
    "1:1": "960:960",
    "21:9": "1584:672",
}

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
    models=("aleph",),
    aspect_ratios=frozenset(RATIOS),
    max_prompt_chars=1000,
    seed=True,
    watermark=False,
    reference_image=True,
    can_cancel=True,
    can_upload=True,
    data_uri_max_bytes=None,
    max_input_bytes=75 * MB,
    typical_render="a few minutes (Krea does not state it; jobs are failed after 2 hours)",
)


class KreaProvider:
    """Runway Aleph via Krea (https://api.krea.ai)."""

    name = "krea"
    capabilities = CAPABILITIES

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        timeout: float = 30.0,
        **extra: Any,
    ) -> None:
        self.http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            secrets=(api_key,),
            timeout=timeout,
        )

    def describe_create(self, request: EditRequest) -> PreparedCreate:
        return self.http.prepare("POST", CREATE, create_body(request))

    async def submit(self, request: EditRequest) -> str:
        body = await self.http.send(self.describe_create(request))
        job_id = body.get("job_id") if isinstance(body, Mapping) else None
        if not isinstance(job_id, str) or not job_id:
            raise self.http.malformed("a create answer without a job_id")
        return job_id

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
        limit = CAPABILITIES.max_input_bytes
        if limit is not None and size > limit:
            raise InvalidInput(
                f"{path.name} is {size} bytes; Krea accepts uploads up to {limit} bytes. "
                "Trim or compress the video first."
            )
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


def create_body(request: EditRequest) -> dict[str, Any]:
    """The create JSON; only documented keys, since Krea rejects unknown ones."""
    body: dict[str, Any] = {"prompt": request.prompt, "init_video": request.video}
    if request.aspect_ratio is not None:
        body["ratio"] = RATIOS[request.aspect_ratio]
    if request.seed is not None:
        body["seed"] = request.seed
    if request.reference_image is not None:
        body["references"] = [{"type": "image", "uri": request.reference_image}]
    return body


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


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path.name}: {exc.strerror or exc}.") from None


def open_binary(path: Path) -> BinaryIO:
    return path.open("rb")
