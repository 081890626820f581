"""The fakes' multipart parser reads back exactly what httpx2 encodes."""

from __future__ import annotations

import httpx2
import pytest

from tests.fakes.multipart import FormPart, form_fields, parse_multipart

EVERY_BYTE = bytes(range(256)) * 4


def encoded(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[str, bytes]:
    """The content type and body httpx2 sends for a form with these fields and files."""
    request = httpx2.Request("POST", "http://127.0.0.1/upload", data=data, files=files)
    return request.headers["content-type"], request.read()


@pytest.mark.parametrize("tail", [b"", b"\r", b"\n", b"\r\n", b"\r\n\r\n"])
def test_binary_content_comes_back_byte_for_byte_whatever_it_ends_with(tail: bytes) -> None:
    """Every byte value and a trailing CR or LF survive; only the delimiter's own CRLF is dropped."""
    content_type, body = encoded({}, {"file": ("clip.mp4", EVERY_BYTE + tail, "video/mp4")})
    (part,) = parse_multipart(content_type, body)
    assert part == FormPart("file", "clip.mp4", "video/mp4", EVERY_BYTE + tail)


def test_fields_come_back_in_order_with_no_content_type() -> None:
    """Plain fields keep their order ahead of the file and carry no filename or content type."""
    content_type, body = encoded(
        {"key": "uploads/abc/clip.mp4", "policy": "p-1"}, {"file": ("clip.mp4", b"moov", "video/mp4")}
    )
    parts = parse_multipart(content_type, body)
    assert [part.name for part in parts] == ["key", "policy", "file"]
    assert parts[0] == FormPart("key", None, None, b"uploads/abc/clip.mp4")
    assert form_fields(content_type, body)["file"].content == b"moov"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b'{"a": 1}'), ("multipart/form-data; boundary=x", {"a": 1}), ("", None)],
)
def test_a_body_that_is_not_multipart_has_no_parts(content_type: str, body: object) -> None:
    """JSON, an already-decoded body or no body at all parse to no parts rather than raising."""
    assert parse_multipart(content_type, body) == []
    assert form_fields(content_type, body) == {}
