"""Checks every edit_video argument against the chosen provider before any request leaves the process.

Messages say what to change. Nothing here does network I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx2

from aleph_mcp.errors import InvalidInput
from aleph_mcp.providers.base import Capabilities

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*);base64,", re.I)
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class VideoInput:
    """A resolved `video` (or `reference_image`) argument."""

    kind: str  # "url", "data", "path"
    value: str  # the URL, the data URI, or the path read from (after intake: the private copy)
    size: int | None = None  # bytes, where known without network I/O
    shown: str | None = None  # a local file's path as checked, once `value` is its private copy
    digest: str | None = None  # sha256 of a local file's content, taken while copying it
    # What the input is, for duplicate detection, when not its bytes or URL: "edit:<id>" for a chain's
    # parent output (edits/chains.py), whichever route it takes to the provider.
    origin: str | None = None

    @property
    def display(self) -> str:
        """What may be stored and shown: never a whole data URI."""
        if self.kind == "data":
            return f"{self.value.split(',', 1)[0]},… ({self.size} bytes)"
        return self.shown or self.value

    @property
    def content_id(self) -> str | None:
        """sha256 of the content where this server has it (a data URI, a copied local file)."""
        if self.kind == "data":
            return hashlib.sha256(self.value.encode()).hexdigest()
        return self.digest


def resolve_input(value: str, allowed_dirs: list[Path], *, what: str = "video") -> VideoInput:
    value = value.strip()
    if not value:
        raise InvalidInput(f"`{what}` is empty. Pass an https URL, a data: URI or a local file path.")
    lowered = value[:16].lower()
    if lowered.startswith("https://"):
        return _url(value, what)
    if lowered.startswith("http://"):
        raise InvalidInput(
            f"`{what}` must use https: providers fetch it from their own network and refuse "
            "plain http. Use an https URL, a data: URI or a local file."
        )
    if lowered.startswith("data:"):
        return _data_uri(value, what)
    if lowered.startswith("file://"):
        return _local_path(unquote(urlparse(value).path), allowed_dirs, what)
    if "://" in value[:16]:
        raise InvalidInput(f"`{what}` has an unsupported scheme. Use https://, data: or a local path.")
    return _local_path(value, allowed_dirs, what)


def _url(value: str, what: str) -> VideoInput:
    try:
        httpx2.URL(value)  # what the probe and the adapters will send; refuses control characters
    except httpx2.InvalidURL as exc:
        raise InvalidInput(
            f"`{what}` is not a usable URL ({exc}); percent-encode special characters."
        ) from None
    parsed = urlparse(value)
    if not parsed.hostname or len(value) > MAX_URL_CHARS:
        raise InvalidInput(
            f"`{what}` is not a usable https URL (it needs a host and at most {MAX_URL_CHARS} chars)."
        )
    return VideoInput("url", value)


def _data_uri(value: str, what: str) -> VideoInput:
    match = _DATA_URI.match(value)
    if match is None:
        raise InvalidInput(f"`{what}` is a data: URI but not base64 (expected data:<mime>;base64,<data>).")
    payload = value[match.end() :]
    head = payload[:4096]
    try:  # checking the head is enough to catch text that is not base64; the rest is the provider's
        base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"`{what}` data: URI holds invalid base64.") from None
    size = len(payload) * 3 // 4 - payload[-2:].count("=")
    if size == 0:
        raise InvalidInput(f"`{what}` data: URI is empty.")
    return VideoInput("data", value, size)


def _local_path(raw: str, allowed_dirs: list[Path], what: str) -> VideoInput:
    if not allowed_dirs:
        raise InvalidInput(
            f"`{what}` looks like a local file, but no directory is allowed for local files. Set "
            "ALEPH_MCP_ALLOWED_DIRS in the server's environment to the folder(s) to allow (or open the "
            "folder as a root in your MCP client), or pass an https URL instead."
        )
    if "\x00" in raw:
        raise InvalidInput(f"`{what}` holds a NUL byte, which no file path can contain.")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise InvalidInput(f"`{what}` must be an absolute path (or start with ~), got {raw!r}.")
    try:
        real = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        raise InvalidInput(f"`{what}` file {raw!r} does not exist.") from None
    roots = [d.expanduser().resolve() for d in allowed_dirs]
    if not any(real == root or real.is_relative_to(root) for root in roots):
        allowed = os.pathsep.join(str(r) for r in roots)
        raise InvalidInput(f"`{what}` {raw!r} is outside the allowed directories ({allowed}).")
    try:
        info = real.stat()
    except OSError as exc:
        raise InvalidInput(f"`{what}` file {raw!r} cannot be read ({exc.strerror or exc}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"`{what}` {raw!r} is not a regular file.")
    return VideoInput("path", str(real), info.st_size)


def check_against(
    caps: Capabilities,
    provider: str,
    *,
    prompt: str,
    model: str,
    aspect_ratio: str | None,
    seed: int | None,
    watermark: str | None,
    reference_image: str | None,
) -> None:
    """Refuse what this provider would refuse (or silently ignore)."""
    if model not in caps.models:
        raise InvalidInput(f"{provider} has no model {model!r}; choose one of: {', '.join(caps.models)}.")
    length = prompt_length(prompt)
    if length > caps.max_prompt_chars:
        raise InvalidInput(
            f"The prompt has {length} characters; {provider} accepts at most {caps.max_prompt_chars} "
            "(emoji and other symbols outside the basic plane count as two). "
            "Shorten it: describe only the change you want."
        )
    if aspect_ratio is not None and aspect_ratio not in caps.aspect_ratios:
        accepted = ", ".join(sorted(caps.aspect_ratios)) or "none (the output follows the input)"
        raise InvalidInput(f"{provider} cannot produce aspect ratio {aspect_ratio}; it accepts: {accepted}.")
    if seed is not None and not caps.seed:
        raise InvalidInput(f"{provider} does not take a seed; leave `seed` out.")
    if watermark and not caps.watermark:
        raise InvalidInput(f"{provider} cannot add a watermark; leave `watermark` out or use provider kie.")
    if reference_image is not None and not caps.reference_image:
        raise InvalidInput(f"{provider} does not take a reference image; leave `reference_image` out.")


def prompt_length(prompt: str) -> int:
    """Length as the vendors count it: UTF-16 code units (JavaScript string length), like Runway."""
    return len(prompt.encode("utf-16-le")) // 2


def check_video_route(video: VideoInput, caps: Capabilities, provider: str, *, what: str = "video") -> None:
    """Can this provider receive the video (or reference image) in the form given?"""
    if video.kind == "data":
        if caps.data_uri_max_bytes is None:
            raise InvalidInput(
                f"{provider} does not accept data: URIs as `{what}`. Pass an https URL, or a local file "
                "(uploaded for you), or choose aimlapi or runway."
            )
        if video.size is not None and video.size > caps.data_uri_max_bytes:
            raise InvalidInput(
                f"The `{what}` data: URI holds {video.size} bytes; {provider} accepts at most "
                f"{caps.data_uri_max_bytes} that way. Pass an https URL or a local file instead."
            )
    if video.kind == "url" and not caps.accepts_urls:
        raise InvalidInput(
            f"The {provider} provider edits files on this machine: pass a local path inside the "
            "allowed directories (ALEPH_MCP_ALLOWED_DIRS)."
        )
    if (
        video.kind == "path"
        and not caps.reads_files_in_place
        and not caps.can_upload
        and caps.data_uri_max_bytes is None
    ):
        raise InvalidInput(
            f"{provider} cannot receive local files as `{what}`. Pass an https URL, or choose a "
            "provider that uploads local files (kie, krea, runway)."
        )
    limit = input_limit(video, caps, provider)
    if video.size is not None and limit is not None and video.size > limit:
        raise InvalidInput(
            f"The `{what}` is {video.size} bytes; {provider} accepts at most {limit}"
            f"{' that way' if video.kind == 'data' else ''}. Trim or compress it first, or choose a provider "
            "with a higher limit (runway uploads take up to 200 MB, krea 75 MB)."
        )


def input_limit(video: VideoInput, caps: Capabilities, provider: str) -> int | None:
    """The largest input (bytes) this provider takes in the form given; None when not documented."""
    if video.kind == "data":
        return caps.data_uri_max_bytes
    if video.kind == "path":
        if not caps.can_upload and not caps.reads_files_in_place:  # sent as a data URI (aimlapi)
            return caps.data_uri_max_bytes
        return caps.upload_max_bytes
    return caps.url_max_bytes
