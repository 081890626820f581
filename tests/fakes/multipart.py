"""The one multipart/form-data parser behind every fake that takes uploads (stdlib email does the split)."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message


@dataclass(frozen=True)
class FormPart:
    """One field of a multipart/form-data body."""

    name: str
    filename: str | None  # None: a plain form field
    content_type: str | None  # None: the part carried no Content-Type header
    content: bytes


def parse_multipart(content_type: str, body: object) -> list[FormPart]:
    """The parts of a multipart/form-data body in the order they came; [] for any other body."""
    if not content_type.lower().startswith("multipart/form-data") or not isinstance(body, bytes):
        return []
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    payload = message.get_payload() if message.is_multipart() else []
    return [_part(part) for part in payload if isinstance(part, Message)]


def form_fields(content_type: str, body: object) -> dict[str, FormPart]:
    """The parts of a multipart/form-data body by field name (a repeated name keeps its last part)."""
    return {part.name: part for part in parse_multipart(content_type, body)}


def _part(part: Message) -> FormPart:
    name = part.get_param("name", header="content-disposition")
    content = part.get_payload(decode=True)
    return FormPart(
        name=name if isinstance(name, str) else "",
        filename=part.get_filename(),
        content_type=part.get_content_type() if part.get("content-type") else None,
        content=content if isinstance(content, bytes) else b"",
    )
