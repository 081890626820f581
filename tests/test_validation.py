"""resolve_input, check_against and check_video_route edge cases, without any provider or network."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from aleph_mcp.edits.validation import (
    MAX_URL_CHARS,
    VideoInput,
    check_against,
    check_video_route,
    prompt_length,
    resolve_input,
)
from aleph_mcp.errors import InvalidInput
from aleph_mcp.providers.aimlapi import CAPABILITIES as AIMLAPI
from aleph_mcp.providers.base import Capabilities
from aleph_mcp.providers.crun import CAPABILITIES as CRUN
from aleph_mcp.providers.kie import CAPABILITIES as KIE
from aleph_mcp.providers.krea import CAPABILITIES as KREA
from aleph_mcp.providers.local import CAPABILITIES as LOCAL
from aleph_mcp.providers.runway import CAPABILITIES as RUNWAY

MB = 1024 * 1024


def data_uri(payload: bytes, *, padded: bool = True, head: str = "data:video/mp4;base64,") -> str:
    text = base64.b64encode(payload).decode()
    return head + (text if padded else text.rstrip("="))


# -- URLs -----------------------------------------------------------------------------------------


def test_an_https_url_is_taken_as_it_is_whatever_the_scheme_case() -> None:
    """HTTPS:// counts as https; the URL is kept verbatim and has no known size."""
    video = resolve_input("  HTTPS://cdn.example.com/a%20b.mp4?sig=1  ", [])
    assert (video.kind, video.value, video.size) == ("url", "HTTPS://cdn.example.com/a%20b.mp4?sig=1", None)
    assert video.display == video.value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("https:///no-host.mp4", "needs a host"),
        ("https://cdn.example.com/" + "a" * MAX_URL_CHARS, "needs a host"),
        ("ftp://cdn.example.com/in.mp4", "unsupported scheme"),
        ("s3://bucket/in.mp4", "unsupported scheme"),
        ("   ", "is empty"),
    ],
)
def test_urls_providers_cannot_fetch_are_refused(value: str, says: str) -> None:
    """No host, too long, or a scheme other than https: refused with what to pass instead."""
    with pytest.raises(InvalidInput, match=says):
        resolve_input(value, [])


# -- data URIs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 100, 4095, 4096, 4097, 10_000])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_the_data_uri_size_estimate_is_exact_with_or_without_padding(size: int, padded: bool) -> None:
    """The decoded size is worked out from the text length alone, padding or not."""
    video = resolve_input(data_uri(bytes(range(256)) * (size // 256) + bytes(size % 256), padded=padded), [])
    assert (video.kind, video.size) == ("data", size)


def test_a_data_uri_is_never_displayed_whole() -> None:
    """The stored and shown form keeps the header and the size, not the payload."""
    payload = b"\x00\x00\x00\x18ftypmp42" * 50
    video = resolve_input(data_uri(payload), [])
    assert video.display == f"data:video/mp4;base64,… ({len(payload)} bytes)"
    assert base64.b64encode(payload).decode()[:40] not in video.display


def test_a_data_uri_with_parameters_before_base64_is_accepted() -> None:
    """data:<mime>;name=…;base64, is valid syntax and keeps its size."""
    video = resolve_input(data_uri(b"abcdef", head="data:video/mp4;name=clip.mp4;base64,"), [])
    assert (video.kind, video.size) == ("data", 6)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("data:video/mp4;base64,", "is empty"),
        ("data:video/mp4;base64,%%%%", "invalid base64"),
        ("data:video/mp4;charset=utf-8,hello", "not base64"),
        ("data:;base64", "not base64"),
    ],
)
def test_malformed_data_uris_are_refused(value: str, says: str) -> None:
    """Empty, non-base64 or not-marked-base64 payloads never reach a provider."""
    with pytest.raises(InvalidInput, match=says):
        resolve_input(value, [])


# -- local paths ----------------------------------------------------------------------------------


def test_a_file_url_inside_an_allowed_dir_resolves_to_the_path(inputs: Path) -> None:
    """file:// URLs, percent-escapes included, are local paths under the same rules."""
    clip = inputs / "my clip.mp4"
    clip.write_bytes(b"x" * 123)
    video = resolve_input("file://" + quote(str(clip)), [inputs])
    assert (video.kind, video.value, video.size) == ("path", str(clip.resolve()), 123)


def test_a_file_url_outside_the_allowed_dirs_is_refused(tmp_path: Path, inputs: Path) -> None:
    """The file:// form gives no way around the allowed directories."""
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="outside the allowed directories"):
        resolve_input(outside.as_uri(), [inputs])


def test_a_tilde_path_expands_to_the_home_directory(
    tmp_path: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """~/inputs/clip.mp4 and an allowed dir written as ~/inputs both expand to $HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (inputs / "clip.mp4").write_bytes(b"xyz")
    video = resolve_input("~/inputs/clip.mp4", [Path("~/inputs")])
    assert (video.kind, video.value, video.size) == ("path", str((inputs / "clip.mp4").resolve()), 3)


def test_a_relative_path_is_refused_with_a_hint(inputs: Path) -> None:
    """Relative paths depend on the server's working directory, so an absolute one is asked for."""
    with pytest.raises(InvalidInput, match="must be an absolute path"):
        resolve_input("inputs/clip.mp4", [inputs])


def test_a_missing_file_is_refused_by_name(inputs: Path) -> None:
    """The message repeats the path that was not found."""
    with pytest.raises(InvalidInput, match=r"does not exist") as caught:
        resolve_input(str(inputs / "gone.mp4"), [inputs])
    assert "gone.mp4" in caught.value.message


def test_a_symlink_inside_pointing_inside_is_accepted_as_its_target(inputs: Path) -> None:
    """Links are followed; one that stays inside the allowed dir is fine."""
    target = inputs / "real.mp4"
    target.write_bytes(b"12345")
    (inputs / "link.mp4").symlink_to(target)
    video = resolve_input(str(inputs / "link.mp4"), [inputs])
    assert (video.value, video.size) == (str(target.resolve()), 5)


def test_a_sibling_dir_sharing_the_allowed_prefix_is_outside(tmp_path: Path, inputs: Path) -> None:
    """/x/inputs-private is not inside /x/inputs, whatever the string prefix says."""
    sibling = tmp_path / "inputs-private"
    sibling.mkdir()
    (sibling / "clip.mp4").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="outside the allowed directories"):
        resolve_input(str(sibling / "clip.mp4"), [inputs])


def test_any_of_several_allowed_dirs_will_do(tmp_path: Path, inputs: Path) -> None:
    """A file in the second allowed dir is accepted."""
    second = tmp_path / "second"
    second.mkdir()
    (second / "clip.mp4").write_bytes(b"x")
    assert resolve_input(str(second / "clip.mp4"), [inputs, second]).kind == "path"


def test_a_reference_image_error_names_the_argument(inputs: Path) -> None:
    """Messages say which argument is wrong."""
    with pytest.raises(InvalidInput, match="`reference_image`"):
        resolve_input(str(inputs / "gone.png"), [inputs], what="reference_image")


# -- check_against --------------------------------------------------------------------------------


def check(caps: Capabilities, prompt: str = "Make it snow", **options: object) -> None:
    values: dict[str, Any] = {
        "model": caps.default_model,
        "aspect_ratio": None,
        "seed": None,
        "watermark": None,
        "reference_image": None,
        **options,
    }
    check_against(caps, "p", prompt=prompt, **values)


def test_prompts_are_measured_in_utf16_units_as_the_vendors_count() -> None:
    """An emoji outside the basic plane counts twice; accented letters count once."""
    assert prompt_length("é" * 10) == 10
    assert prompt_length("🎬" * 10) == 20
    check(KREA, "🎬" * 500)
    with pytest.raises(InvalidInput, match="1002 characters"):
        check(KREA, "🎬" * 501)


def test_a_prompt_at_exactly_the_limit_is_accepted() -> None:
    """The limit is inclusive."""
    check(KREA, "x" * 1000)
    check(KIE, "x" * 2048)
    with pytest.raises(InvalidInput, match="at most 2048"):
        check(KIE, "x" * 2049)


def test_an_empty_watermark_is_the_same_as_none() -> None:
    """watermark='' asks for nothing, so providers without watermarks accept it."""
    check(RUNWAY, watermark="")
    with pytest.raises(InvalidInput, match="watermark"):
        check(RUNWAY, watermark="ACME")
    check(KIE, watermark="ACME")


def test_an_unsupported_ratio_lists_the_accepted_ones() -> None:
    """A provider taking no ratio says the output follows the input."""
    crun_like = Capabilities(models=("m",))
    with pytest.raises(InvalidInput, match="the output follows the input"):
        check(crun_like, aspect_ratio="16:9")


# -- check_video_route ----------------------------------------------------------------------------


def test_a_large_local_file_may_go_to_runway_through_its_upload_route() -> None:
    """Runway takes 32 MB by URL but 200 MB as an upload: a 50 MB local file is fine, 201 MB is not."""
    check_video_route(VideoInput("path", "/in/big.mp4", 50 * MB), RUNWAY, "runway")
    with pytest.raises(InvalidInput, match=f"at most {200 * MB}"):
        check_video_route(VideoInput("path", "/in/huge.mp4", 201 * MB), RUNWAY, "runway")


def test_kie_refuses_a_local_file_over_its_input_limit() -> None:
    """kie fetches the uploaded file as videoUrl, which it caps at 10 MB."""
    check_video_route(VideoInput("path", "/in/ok.mp4", 10 * MB), KIE, "kie")
    with pytest.raises(InvalidInput, match=f"at most {10 * MB}"):
        check_video_route(VideoInput("path", "/in/big.mp4", 10 * MB + 1), KIE, "kie")


def test_a_runway_data_uri_of_five_megabytes_is_accepted_and_one_byte_more_is_not() -> None:
    """aleph2 takes data URIs up to 5 MB (runwayml 5.24); data_uri_max_bytes is inclusive."""
    check_video_route(VideoInput("data", "data:…", 5 * MB), RUNWAY, "runway")
    with pytest.raises(InvalidInput, match="Pass an https URL or a local file instead"):
        check_video_route(VideoInput("data", "data:…", 5 * MB + 1), RUNWAY, "runway")


def test_a_provider_without_uploads_takes_local_files_as_data_uris_up_to_its_limit() -> None:
    """AI/ML API has no upload route but takes data URIs: small files pass, larger ones are refused."""
    check_video_route(VideoInput("path", "/in/clip.mp4", 5 * MB), AIMLAPI, "aimlapi")
    with pytest.raises(InvalidInput, match="runway uploads take up to 200 MB"):
        check_video_route(VideoInput("path", "/in/clip.mp4", 5 * MB + 1), AIMLAPI, "aimlapi")


def test_a_provider_with_no_route_for_files_refuses_them_and_names_one_that_has() -> None:
    """crun takes neither uploads nor data URIs; the message names the providers that upload."""
    with pytest.raises(InvalidInput, match=r"kie, krea, runway"):
        check_video_route(VideoInput("path", "/in/clip.mp4", 10), CRUN, "crun")


def test_the_local_provider_takes_only_local_paths() -> None:
    """An https URL for the offline provider is refused; a path is fine."""
    with pytest.raises(InvalidInput, match="local provider edits files on this machine"):
        check_video_route(VideoInput("url", "https://cdn.example.com/in.mp4"), LOCAL, "local")
    check_video_route(VideoInput("path", "/in/clip.mp4", 10), LOCAL, "local")


def test_a_url_of_unknown_size_passes_the_size_checks() -> None:
    """Without network I/O a URL's size is unknown; the provider judges it."""
    check_video_route(VideoInput("url", "https://cdn.example.com/in.mp4"), KIE, "kie")
