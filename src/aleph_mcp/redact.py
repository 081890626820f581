"""Scrubbing: no secret, bearer token or wall of vendor text reaches a record, an error or a log."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MAX_VENDOR_TEXT = 300
_PASSWORD_PARAM = re.compile(r"(?i)((?:^|&)password=)([^&]*)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}")


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove secrets and bearer tokens from vendor text and trim it to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VENDOR_TEXT else text[: MAX_VENDOR_TEXT - 1] + "…"


def url_without_password(url: str) -> str:
    """A database URL fit to show: its password (in the user part or a `password=` parameter) as ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_passwords(url: str) -> list[str]:
    """The password(s) a database URL carries, as written and percent-decoded: what to scrub from text."""
    parts = urlsplit(url)
    found = []
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found += [m.group(2) for m in _PASSWORD_PARAM.finditer(parts.query)]
    return [p for secret in found if secret for p in {secret, unquote(secret)}]


def scrub_url_secrets(text: str, url: str) -> str:
    """`text` (an error from a database driver) without the password `url` carries."""
    for secret in sorted(url_passwords(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
