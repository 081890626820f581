"""AimlapiProvider against FakeAimlapi: request shapes, status mapping, errors, no cancel, no upload."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import anyio
import httpx2
import pytest

from aleph_mcp.errors import (
    AuthFailed,
    CannotCancel,
    FatalProviderError,
    InvalidInput,
    RateLimited,
    RemoteNotFound,
    TransientProviderError,
)
from aleph_mcp.models import ASPECT_RATIOS, AspectRatio, EditRequest
from aleph_mcp.providers.aimlapi import STATUS, AimlapiProvider
from tests.fakes.aimlapi import FakeAimlapi
from tests.fakes.base import Fault, State
from tests.fakes.server import serve_fakes
from tests.providers.adapters import RUNWAY_PIXELS, STYLE, VIDEO, submit_and_poll, submit_error

KEY = "aiml-secret-key-0123456789abcdef"
BASE = "https://api.aimlapi.test"
FULL = EditRequest(
    prompt="Make it snow",
    video=VIDEO,
    model="gen4_aleph",
    aspect_ratio="9:16",
    seed=42,
    reference_image=STYLE,
)
MINIMAL = EditRequest(prompt="Make it snow", video=VIDEO, model="gen4_aleph")


def make(client: httpx2.AsyncClient, key: str = KEY, base_url: str = BASE) -> AimlapiProvider:
    return AimlapiProvider(client, api_key=key, base_url=base_url)


async def test_submit_sends_the_documented_body_with_bearer_auth() -> None:
    """The create is one POST /v2/video/generations with every field mapped to AI/ML API's names."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        task_id = await make(client).submit(FULL)
    [create] = fake.creates
    assert (create.method, create.path) == ("POST", "/v2/video/generations")
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.body == {
        "model": "runway/gen4_aleph",
        "prompt": "Make it snow",
        "video_url": VIDEO,
        "frame_size": "720:1280",
        "seed": 42,
        "references": [{"type": "image", "url": STYLE}],
    }
    assert task_id in fake.tasks


async def test_submit_omits_optional_fields_that_are_not_set() -> None:
    """Without ratio, seed or reference the body carries only model, prompt and video_url."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await make(client).submit(MINIMAL)
    assert fake.creates[0].body == {
        "model": "runway/gen4_aleph",
        "prompt": "Make it snow",
        "video_url": VIDEO,
    }


@pytest.mark.parametrize(("ratio", "frame_size"), RUNWAY_PIXELS.items())
async def test_each_aspect_ratio_maps_to_its_frame_size(ratio: AspectRatio, frame_size: str) -> None:
    """Our six ratios become Runway's pixel frame sizes."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await make(client).submit(
            EditRequest(prompt="p", video=VIDEO, model="gen4_aleph", aspect_ratio=ratio)
        )
    assert fake.creates[0].body["frame_size"] == frame_size


@pytest.mark.parametrize(
    ("state", "word", "expected"),
    [
        ("queued", "queued", "queued"),
        ("queued", "waiting", "queued"),
        ("running", "generating", "running"),
        ("running", "active", "running"),
        ("succeeded", "completed", "succeeded"),
        ("failed", "error", "failed"),
        ("failed", "failed", "failed"),
    ],
)
async def test_every_vendor_status_word_maps_to_our_status(state: State, word: str, expected: str) -> None:
    """Each word AI/ML API has used (current and legacy) lands on the right one of our statuses."""
    fake = FakeAimlapi(api_key=KEY, steps=(state,))
    fake.words[state] = word
    remote = await submit_and_poll(fake, make, MINIMAL)
    assert remote.status == expected
    assert word in STATUS.words  # mapped by the table, not by the unknown-word fallback


async def test_a_task_runs_from_queued_to_succeeded_with_the_video_url() -> None:
    """Polls follow queued -> running -> succeeded and the last one carries `video.url`."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        task_id = await provider.submit(FULL)
        seen = [await provider.poll(task_id) for _ in range(3)]
    assert [s.status for s in seen] == ["queued", "running", "succeeded"]
    assert seen[-1].output_url == fake.video_url(fake.tasks[task_id])
    assert seen[-1].error_message is None
    assert fake.calls("status")[0].params == {"generation_id": task_id}


async def test_a_legacy_array_video_is_accepted_as_the_output_url() -> None:
    """`video` as an array of URL strings (legacy endpoint) still yields the output URL."""
    fake = FakeAimlapi(api_key=KEY, steps=("succeeded",))
    fake.video_shape = "array"
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        task_id = await provider.submit(MINIMAL)
        remote = await provider.poll(task_id)
    assert remote.output_url == fake.video_url(fake.tasks[task_id])


@pytest.mark.parametrize(("shape", "code"), [("object", "GenerationError"), ("string", "generation_failed")])
async def test_the_vendor_failure_reason_reaches_error_message(
    shape: Literal["object", "string"], code: str
) -> None:
    """`error` as `{name, message}` or as a bare string becomes error_code and error_message."""
    fake = FakeAimlapi(api_key=KEY, steps=("failed",), failure_message="Prompt flagged by moderation")
    fake.error_shape = shape
    remote = await submit_and_poll(fake, make, MINIMAL)
    assert (remote.status, remote.error_code) == ("failed", code)
    assert remote.error_message == "Prompt flagged by moderation"


async def test_a_failure_without_a_reason_still_explains_itself() -> None:
    """`status: error` with `error: null` gets a readable default message."""
    fake = FakeAimlapi(api_key=KEY)
    fake.inject(Fault(kind="status", status=200, body={"id": "g1", "status": "error", "error": None}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        remote = await make(client).poll("g1")
    assert remote.status == "failed"
    assert remote.error_message is not None
    assert "without giving a reason" in remote.error_message


async def test_a_completed_answer_without_a_video_is_malformed() -> None:
    """`completed` with no video URL raises a transient malformed-response error."""
    fake = FakeAimlapi(api_key=KEY)
    fake.inject(Fault(kind="status", status=200, body={"id": "g1", "status": "completed", "video": None}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(TransientProviderError) as caught:
            await make(client).poll("g1")
    assert caught.value.code == "malformed_response"
    assert "without an output URL" in caught.value.message


async def test_a_create_answer_without_an_id_is_malformed_and_may_have_created() -> None:
    """A 2xx create without `id` is an unknown outcome: transient, not_created False."""
    fake = FakeAimlapi(api_key=KEY)
    fake.inject(Fault(kind="create", status=200, body={"status": "queued"}))
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, TransientProviderError)
    assert error.code == "malformed_response"
    assert error.not_created is False


async def test_a_wrong_api_key_raises_auth_failed() -> None:
    """A 401 becomes AuthFailed; nothing was created and the key is not echoed."""
    fake = FakeAimlapi(api_key=KEY)
    error = await submit_error(fake, make, MINIMAL, "wrong-key-0123456789")
    assert isinstance(error, AuthFailed)
    assert error.not_created is True
    assert "invalid or missing API key" in error.message
    assert "wrong-key-0123456789" not in error.message


async def test_a_body_validation_error_is_fatal_with_the_vendor_text() -> None:
    """A 400 "Body validation error" is a FatalProviderError carrying AI/ML API's explanation."""
    fake = FakeAimlapi(api_key=KEY)
    error = await submit_error(fake, make, EditRequest(prompt="x" * 1001, video=VIDEO, model="gen4_aleph"))
    assert isinstance(error, FatalProviderError)
    assert error.status_code == 400
    assert error.not_created is True
    assert "Body validation error: String must contain at most 1000 character(s)" in error.message


async def test_a_403_says_the_account_is_out_of_credits() -> None:
    """AI/ML API's 403 is reported as out of credits, fatal, and safe to resend later."""
    fake = FakeAimlapi(api_key=KEY)
    fake.out_of_credits = True
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, FatalProviderError)
    assert (error.code, error.status_code) == ("insufficient_credits", 403)
    assert error.not_created is True
    assert "out of credits" in error.message
    assert "Insufficient credits" in error.message


async def test_a_429_with_retry_after_raises_rate_limited() -> None:
    """A 429 becomes RateLimited with the Retry-After seconds."""
    fake = FakeAimlapi(api_key=KEY)
    body = {"message": "Too many requests", "statusCode": 429}
    fake.inject(Fault(kind="create", status=429, body=body, headers={"Retry-After": "7"}))
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert error.not_created is True


async def test_polling_an_unknown_generation_raises_remote_not_found() -> None:
    """A 404 on the status route becomes RemoteNotFound."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(RemoteNotFound, match="Generation not found"):
            await make(client).poll("no-such-id")


async def test_cancel_raises_cannot_cancel_without_sending_anything() -> None:
    """AI/ML API has no cancel route, so cancel refuses locally."""
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(CannotCancel, match="no cancel API"):
            await make(client).cancel("g1")
    assert fake.requests == []


async def test_upload_is_refused_with_a_pointer_to_data_uris(tmp_path: Path) -> None:
    """There is no upload route; the message says data URIs are accepted instead."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    fake = FakeAimlapi(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(InvalidInput, match="data: URI"):
            await make(client).upload(clip)
    assert fake.requests == []


async def test_the_api_key_never_appears_in_error_messages() -> None:
    """Vendor text echoing the key is scrubbed, both in raised errors and in failure reasons."""
    fake = FakeAimlapi(api_key=KEY, steps=("failed",), failure_message=f"worker saw key {KEY}")
    fake.inject(Fault(kind="create", status=400, body={"message": f"Bad request from Bearer {KEY} ({KEY})"}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        with pytest.raises(FatalProviderError) as caught:
            await provider.submit(MINIMAL)
        remote = await provider.poll(await provider.submit(MINIMAL))
    assert KEY not in caught.value.message
    assert "***" in caught.value.message
    assert remote.error_message == "worker saw key ***"


def test_the_status_table_covers_every_word_the_fake_can_emit() -> None:
    """STATUS knows every word the fake (and so the documented API) can send."""
    emitted = set(FakeAimlapi.vendor_words) | set(FakeAimlapi.words.values())
    assert emitted <= set(STATUS.words)


def test_capabilities_match_what_the_adapter_sends() -> None:
    """Every advertised ratio has a frame size; no cancel, no upload, data URIs up to 5 MB like Runway."""
    caps = AimlapiProvider.capabilities
    assert caps.aspect_ratios == frozenset(ASPECT_RATIOS)
    assert (caps.default_model, caps.can_cancel, caps.can_upload) == ("gen4_aleph", False, False)
    assert caps.data_uri_max_bytes == 5 * 1024 * 1024


async def test_a_whole_edit_works_against_the_fake_on_loopback() -> None:
    """Submit, poll to the end and download the output through a real HTTP server."""
    fake = FakeAimlapi(api_key=KEY)
    with serve_fakes({"aimlapi": fake}) as origin, anyio.fail_after(10):
        async with httpx2.AsyncClient() as client:
            provider = make(client, base_url=f"{origin}/aimlapi")
            task_id = await provider.submit(FULL)
            statuses = [await provider.poll(task_id) for _ in range(3)]
            assert statuses[-1].output_url is not None
            video = await client.get(statuses[-1].output_url)
    assert [s.status for s in statuses] == ["queued", "running", "succeeded"]
    assert video.content == fake.video_bytes
