"""The Provider seam: what every adapter offers, what it can do, and its vendor-status table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from aleph_mcp.models import AspectRatio, EditRequest, EditStatus, RemoteStatus

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    """What a provider accepts. The service validates every call against this before any request."""

    models: tuple[str, ...]  # the first one is the default
    aspect_ratios: frozenset[AspectRatio] = frozenset()  # empty: the provider takes no ratio
    max_prompt_chars: int = 1000
    seed: bool = False
    watermark: bool = False
    reference_image: bool = False
    can_cancel: bool = False
    can_upload: bool = False
    data_uri_max_bytes: int | None = None  # None: data URIs are not accepted
    max_input_bytes: int | None = None  # None: not documented
    needs_key: bool = True
    typical_render: str = "2-15 minutes"

    @property
    def default_model(self) -> str:
        return self.models[0]


class PreparedCreate(BaseModel):
    """One create request exactly as an adapter sends it, with its secrets masked.

    `submit` sends what `describe_create` returns (same method, URL and body), so a preview cannot drift
    from the real request. Only the masked header values differ from what goes on the wire.
    """

    method: str = Field(description="HTTP method (RENDER for the local provider: nothing is sent)")
    url: str
    headers: dict[str, str] = Field(description="Request headers; secrets shown as ***")
    body: dict[str, Any] = Field(description="The JSON body")


class Provider(Protocol):
    """A hosted (or local) Aleph backend.

    Adapters receive an `httpx2.AsyncClient` and never create or close it. Every method raises only
    `errors.ProviderError` subclasses for provider trouble (see `_http.py`), with vendor text scrubbed.

    - `submit` sends exactly one create request and returns the provider's task id. It never retries:
      whether a failed create may be sent again is the caller's decision (`ProviderError.not_created`).
    - `poll` reads the task once and maps the vendor's status word through the adapter's one `StatusTable`.
    - `cancel` stops a task; adapters whose API has no cancel raise `errors.CannotCancel`.
    - `upload` turns a local file into something `submit` accepts as `video` (a URL or upload URI).
    - `describe_create` is side-effect free: the create `submit` would send for `request`, secrets masked.
      It raises what `submit` raises for a request the adapter refuses before sending.
    """

    name: str
    capabilities: Capabilities

    def describe_create(self, request: EditRequest) -> PreparedCreate: ...

    async def submit(self, request: EditRequest) -> str: ...

    async def poll(self, task_id: str) -> RemoteStatus: ...

    async def cancel(self, task_id: str) -> None: ...

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str: ...


LOCAL_RESULT_SCHEME = "aleph-local:"


def local_result_url(task_id: str) -> str:
    """The output_url of a result rendered on this machine: a name, not a path any provider could give."""
    return f"{LOCAL_RESULT_SCHEME}{task_id}"


@runtime_checkable
class RendersHere(Protocol):
    """A provider whose results are files on this machine (`local`). The poller reads a result from the
    provider's own job folder (`output_file`), never from a path named in an answer, and `discard`s the
    job once its result is archived."""

    def output_file(self, task_id: str) -> Path: ...

    def discard(self, task_id: str) -> None: ...


class StatusTable:
    """Maps a vendor's status words to ours; the single table every code path of an adapter uses.

    An unknown word maps to `running` (logged): failing a paid edit because a vendor added a word would
    be worse than polling it until it resolves or hits the edit deadline.
    """

    def __init__(self, vendor: str, table: Mapping[str, EditStatus]) -> None:
        self.vendor = vendor
        self._table = {word.lower(): status for word, status in table.items()}

    def __call__(self, word: object) -> EditStatus:
        key = str(word).strip().lower()
        status = self._table.get(key)
        if status is None:
            logger.warning("%s reported an unknown status %r; treating it as running", self.vendor, word)
            return "running"
        return status

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._table)
