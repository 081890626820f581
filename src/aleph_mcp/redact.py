"""Scrubbing: no secret, bearer token or wall of vendor text reaches a record, an error or a log."""

from __future__ import annotations

import re

MAX_VENDOR_TEXT = 300
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}")


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove secrets and bearer tokens from vendor text and trim it to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VENDOR_TEXT else text[: MAX_VENDOR_TEXT - 1] + "…"
