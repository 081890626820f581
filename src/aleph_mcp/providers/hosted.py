"""What every hosted adapter shares: the HTTP client built from key, base URL and timeout, the create
request it previews and then sends, and reading the task id out of the create answer.

An adapter supplies its headers, create path, body and task-id reader; the rest is its own API.
Requests reach an adapter only after the intake (edits.validation) checked them against its
Capabilities, so adapters do not check models, ratios or prompt lengths again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Self

import httpx2

from aleph_mcp.errors import FatalProviderError, InvalidInput
from aleph_mcp.models import AspectRatio, EditRequest, RemoteStatus
from aleph_mcp.providers._http import ProviderHTTP
from aleph_mcp.providers.base import Capabilities, PreparedCreate, ProgressCallback, ProviderConfig

# Runway's pixel sizes for our ratios: gen4_aleph's `ratio`, and what resellers forward to it
# (AI/ML API's `frame_size`, Krea's `ratio`).
RUNWAY_PIXELS: dict[AspectRatio, str] = {
    "16:9": "1280:720",
    "9:16": "720:1280",
    "4:3": "1104:832",
    "3:4": "832:1104",
    "1:1": "960:960",
    "21:9": "1584:672",
}


class HostedAdapter(ABC):
    """The shared half of a hosted adapter; subclasses name themselves and implement the vendor's API."""

    name: str
    capabilities: Capabilities
    create_path: str
    missing_id = "a create answer without a task id"  # the malformed-answer message, in vendor terms

    def __init__(
        self, client: httpx2.AsyncClient, *, api_key: str, base_url: str, timeout: float = 30.0
    ) -> None:
        self.http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=base_url,
            headers=self.headers(api_key),
            secrets=(api_key,),
            timeout=timeout,
        )

    @classmethod
    def from_config(cls, client: httpx2.AsyncClient, config: ProviderConfig) -> Self:
        return cls(client, api_key=config.api_key, base_url=config.base_url, timeout=config.timeout)

    def headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    @abstractmethod
    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """The vendor's create JSON for one (already validated) request."""

    @abstractmethod
    def task_id(self, answer: Any) -> str | None:
        """The task id in a create answer; None when it has none. May raise for a vendor envelope."""

    @abstractmethod
    async def poll(self, task_id: str) -> RemoteStatus: ...

    @abstractmethod
    async def cancel(self, task_id: str) -> None: ...

    @abstractmethod
    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str: ...

    def explain_refusal(self, exc: FatalProviderError, request: EditRequest | None) -> FatalProviderError:
        """A clearer error for a refusal the vendor words poorly; `exc` itself when there is none."""
        return exc

    def create_headers(self, request: EditRequest) -> dict[str, str]:
        """Headers a create carries beyond the usual ones (Krea's webhook URL)."""
        return {}

    def describe_create(self, request: EditRequest) -> PreparedCreate:
        headers = self.create_headers(request)
        return self.http.prepare("POST", self.create_path, self.create_body(request), headers=headers)

    async def submit(self, request: EditRequest) -> str:
        create = self.describe_create(request)
        answer = await self.explained(self.http.send(create, headers=self.create_headers(request)), request)
        task_id = self.task_id(answer)
        if task_id is None:
            raise self.http.malformed(self.missing_id)
        return task_id

    async def explained(self, call: Awaitable[Any], request: EditRequest | None = None) -> Any:
        """Await one call; a fatal refusal passes through `explain_refusal`."""
        try:
            return await call
        except FatalProviderError as exc:
            clearer = self.explain_refusal(exc, request)
            if clearer is exc:
                raise
            raise clearer from None


def runway_options(request: EditRequest, *, ratio: str, reference: str) -> dict[str, Any]:
    """The optional fields APIs forwarding to Runway's gen4_aleph take, under their `ratio` name and
    with the reference image under `reference` ("url" or "uri"); unset ones are left out."""
    options: dict[str, Any] = {}
    if request.aspect_ratio is not None:
        options[ratio] = RUNWAY_PIXELS[request.aspect_ratio]
    if request.seed is not None:
        options["seed"] = request.seed
    if request.reference_image is not None:
        options["references"] = [{"type": "image", reference: request.reference_image}]
    return options


def text_id(value: object, *, numeric: bool = False) -> str | None:
    """An id as non-empty text; integers too where the vendor may send them (never a bool)."""
    if numeric and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value else None


def file_size(path: Path) -> int:
    """The size of a file about to be uploaded (the intake already checked it against the limit)."""
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path.name}: {exc.strerror or exc}.") from None
