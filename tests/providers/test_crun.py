"""CrunProvider against FakeCrun: the CreateTask body, status words, envelope codes and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from aleph_mcp.errors import (
    AuthFailed,
    CannotCancel,
    FatalProviderError,
    InvalidInput,
    ProviderError,
    RateLimited,
    RemoteNotFound,
    TransientProviderError,
)
from aleph_mcp.models import EditRequest
from aleph_mcp.providers.crun import CAPABILITIES, STATUS, CrunProvider
from tests.fakes.base import Fault, State
from tests.fakes.crun import CREATE, TASK_INFO, FakeCrun
from tests.fakes.server import serve_fakes

BASE = "https://api.crun.test"


def edit(**options: Any) -> EditRequest:
    return EditRequest(
        prompt="Make it snow", video="https://cdn.example.com/in.mp4", model="gen-4-aleph", **options
    )


@asynccontextmanager
async def crun(fake: FakeCrun, *, api_key: str | None = None) -> AsyncIterator[CrunProvider]:
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        yield CrunProvider(client, api_key=api_key or fake.api_key, base_url=BASE, timeout=5)


async def test_submit_sends_the_model_and_input_with_the_x_api_key_header() -> None:
    """CreateTask gets runway/gen-4-aleph and input {prompt, video_url}, authenticated by x-api-key."""
    fake = FakeCrun()
    async with crun(fake) as provider:
        task_id = await provider.submit(edit())
    (sent,) = fake.creates
    assert (sent.method, sent.path) == ("POST", CREATE)
    assert sent.headers["x-api-key"] == fake.api_key
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "runway/gen-4-aleph",
        "input": {"prompt": "Make it snow", "video_url": "https://cdn.example.com/in.mp4"},
    }
    assert task_id in fake.tasks


async def test_submit_sends_no_field_crun_does_not_confirm() -> None:
    """Ratio, seed, reference image and watermark are not sent: crun's names for them are unknown."""
    fake = FakeCrun()
    request = edit(
        aspect_ratio="16:9", seed=3, reference_image="https://cdn.example.com/s.png", watermark="w"
    )
    async with crun(fake) as provider:
        await provider.submit(request)
    assert set(fake.creates[0].json) == {"model", "input"}
    assert set(fake.creates[0].json["input"]) == {"prompt", "video_url"}


@pytest.mark.parametrize(
    ("state", "word", "expected"),
    [
        ("queued", "pending", "queued"),
        ("running", "running", "running"),
        ("succeeded", "success", "succeeded"),
        ("failed", "failed", "failed"),
    ],
)
async def test_poll_maps_each_crun_status_word(state: State, word: str, expected: str) -> None:
    """Each of crun's status words maps to our vocabulary through the status table."""
    fake = FakeCrun(steps=(state,))
    assert fake.words[state] == word
    async with crun(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == expected
    assert word in STATUS.words  # mapped by the table, not by the unknown-word fallback


async def test_an_unknown_word_keeps_the_edit_running() -> None:
    """A status word crun may add later is polled on as running rather than failing a paid edit."""
    fake = FakeCrun(steps=("running",))
    fake.words = {**FakeCrun.words, "running": "processing"}
    async with crun(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == "running"
    assert "processing" not in STATUS.words  # it really was an unknown word


async def test_a_finished_task_reports_the_first_media_url() -> None:
    """The task runs through its steps and ends with result.media_urls[0] as the output."""
    fake = FakeCrun()
    async with crun(fake) as provider:
        task_id = await provider.submit(edit())
        seen = [await provider.poll(task_id) for _ in range(3)]
    assert [s.status for s in seen] == ["queued", "running", "succeeded"]
    assert seen[-1].output_url == fake.video_url(fake.tasks[task_id])
    assert seen[-1].thumbnail_url is None
    assert fake.calls("status")[0].path == TASK_INFO
    assert fake.calls("status")[0].params == {"task_id": task_id}


@pytest.mark.parametrize("where", ["result", "error", "envelope"])
async def test_a_failed_task_carries_crun_reason_wherever_it_is(where: str) -> None:
    """The reason is read from result.message, data.error or the envelope message."""
    fake = FakeCrun(steps=("failed",), failure_message="Generation failed: input video unreadable")
    fake.failure_field = where
    async with crun(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == "failed"
    assert remote.error_message == "Generation failed: input video unreadable"
    assert remote.error_code == ("crun_501" if where == "result" else "generation_failed")


async def test_a_failure_without_reason_says_crun_failed_not_success() -> None:
    """With no reason anywhere, the message says the edit failed; the envelope's "success" is ignored."""
    fake = FakeCrun(steps=("failed",))
    fake.failure_field = "nowhere"
    async with crun(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.error_message == "crun reported the edit failed."


async def test_success_without_media_urls_is_malformed() -> None:
    """status success with no result.media_urls raises a retryable malformed-response error."""
    fake = FakeCrun()
    data = {"task_id": "t1", "status": "success", "result": {"code": 200, "message": "success"}}
    fake.inject(Fault(kind="status", status=200, body={"code": 200, "message": "success", "data": data}))
    async with crun(fake) as provider:
        with pytest.raises(TransientProviderError, match="without an output URL") as caught:
            await provider.poll("t1")
    assert caught.value.code == "malformed_response"


@pytest.mark.parametrize("errors_as_http", [False, True])
async def test_a_wrong_key_is_auth_failed_and_nothing_was_created(errors_as_http: bool) -> None:
    """crun's 401 (envelope on HTTP 200, or HTTP 401) raises AuthFailed with not_created set."""
    fake = FakeCrun()
    fake.errors_as_http = errors_as_http
    async with crun(fake, api_key="wrong-key-98765") as provider:
        with pytest.raises(AuthFailed, match="the API key is missing or invalid") as caught:
            await provider.submit(edit())
    assert caught.value.not_created is True
    assert not fake.tasks


@pytest.mark.parametrize("errors_as_http", [False, True])
async def test_crun_validation_errors_are_fatal_with_crun_text(errors_as_http: bool) -> None:
    """A body crun refuses (422, here a model it does not know) is fatal and quotes crun."""
    fake = FakeCrun()
    fake.errors_as_http = errors_as_http
    async with crun(fake) as provider:
        with pytest.raises(FatalProviderError, match="unsupported model 'runway/gen-9'") as caught:
            await provider.submit(EditRequest("Snow", "https://cdn.example.com/a.mp4", "gen-9"))
    assert (caught.value.status_code, caught.value.not_created) == (422, True)


@pytest.mark.parametrize(
    ("code", "error", "not_created"),
    [
        (401, AuthFailed, True),
        (402, FatalProviderError, True),
        (404, RemoteNotFound, True),
        (422, FatalProviderError, True),
        (429, RateLimited, True),
        (455, TransientProviderError, True),
        (500, TransientProviderError, False),
        (501, FatalProviderError, False),  # "generation failed": a verdict, not an outage
        (505, FatalProviderError, True),  # "feature disabled": nothing was created
    ],
)
async def test_envelope_codes_on_http_200_are_classified(
    code: int, error: type[ProviderError], not_created: bool
) -> None:
    """Each documented envelope code on an HTTP 200 raises the error _http assigns to that status."""
    fake = FakeCrun()
    body = {"code": code, "message": f"crun says {code}", "data": None}
    fake.inject(Fault(kind="create", status=200, body=body))
    async with crun(fake) as provider:
        with pytest.raises(error, match=f"crun says {code}") as caught:
            await provider.submit(edit())
    assert type(caught.value) is error
    assert (caught.value.status_code, caught.value.not_created) == (code, not_created)


async def test_an_envelope_error_on_a_status_read_raises() -> None:
    """TaskInfo answering code 404 for an unknown task raises RemoteNotFound."""
    fake = FakeCrun()
    async with crun(fake) as provider:
        with pytest.raises(RemoteNotFound, match="Task not found"):
            await provider.poll("no-such-task")


async def test_http_429_with_retry_after_is_rate_limited() -> None:
    """HTTP 429 becomes RateLimited carrying the Retry-After seconds."""
    fake = FakeCrun()
    body = {"code": 429, "message": "Rate limited"}
    fake.inject(Fault(kind="create", status=429, body=body, headers={"Retry-After": "9"}))
    async with crun(fake) as provider:
        with pytest.raises(RateLimited, match="Rate limited") as caught:
            await provider.submit(edit())
    assert (caught.value.retry_after, caught.value.not_created) == (9.0, True)


async def test_a_create_answer_without_task_id_is_malformed() -> None:
    """code 200 with no data.task_id is a malformed answer whose outcome is unknown."""
    fake = FakeCrun()
    fake.inject(Fault(kind="create", status=200, body={"code": 200, "message": "success", "data": {}}))
    async with crun(fake) as provider:
        with pytest.raises(TransientProviderError, match="without a task_id") as caught:
            await provider.submit(edit())
    assert (caught.value.code, caught.value.not_created) == ("malformed_response", False)


async def test_cancel_is_refused_because_crun_has_no_cancel() -> None:
    """crun has no cancel API; cancel says so and sends nothing."""
    fake = FakeCrun()
    async with crun(fake) as provider:
        with pytest.raises(CannotCancel, match="crun has no cancel API"):
            await provider.cancel("t1")
    assert fake.requests == []


async def test_upload_is_refused_because_crun_has_no_upload_route(tmp_path: Path) -> None:
    """A local file cannot go to crun; the error says to use an https URL, and nothing is sent."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    fake = FakeCrun()
    async with crun(fake) as provider:
        with pytest.raises(InvalidInput, match="use an https URL"):
            await provider.upload(clip)
    assert fake.requests == []


async def test_the_api_key_never_appears_in_errors() -> None:
    """Vendor text that echoes the key is scrubbed, in raised errors and in failure reasons."""
    fake = FakeCrun(steps=("failed",), failure_message="Failed for key test-key-0123456789")
    echo = {"code": 422, "message": f"Invalid request from {fake.api_key}", "data": None}
    fake.inject(Fault(kind="create", status=200, body=echo))
    fake.inject(Fault(kind="create", status=422, body=echo))
    async with crun(fake) as provider:
        for _ in range(2):
            with pytest.raises(FatalProviderError) as caught:
                await provider.submit(edit())
            assert fake.api_key not in str(caught.value)
            assert "***" in caught.value.message
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.error_message == "Failed for key ***"


def test_the_status_table_covers_every_word_the_fake_emits() -> None:
    """Every status word FakeCrun can report is in STATUS."""
    assert set(FakeCrun.words.values()) <= set(STATUS.words)


def test_capabilities_claim_nothing_crun_does_not_document() -> None:
    """One model; no ratios, seed, watermark, reference image, cancel, upload or data URIs."""
    assert CAPABILITIES.models == ("gen-4-aleph",)
    assert CAPABILITIES.aspect_ratios == frozenset()
    flags = (CAPABILITIES.seed, CAPABILITIES.watermark, CAPABILITIES.reference_image)
    assert flags == (False, False, False)
    assert (CAPABILITIES.can_cancel, CAPABILITIES.can_upload, CAPABILITIES.data_uri_max_bytes) == (
        False,
        False,
        None,
    )


async def test_the_fake_serves_a_whole_edit_over_loopback() -> None:
    """Through tests/fakes/server.py: submit and poll to the end over real HTTP, then fetch the video."""
    fake = FakeCrun()
    with serve_fakes({"crun": fake}) as origin:
        async with httpx2.AsyncClient(trust_env=False) as client:
            provider = CrunProvider(client, api_key=fake.api_key, base_url=f"{origin}/crun")
            task_id = await provider.submit(edit())
            statuses = [await provider.poll(task_id) for _ in range(3)]
            downloaded = await client.get(statuses[-1].output_url or "")
    assert statuses[-1].output_url == f"{origin}/crun/files/{task_id}.mp4"
    assert downloaded.content == fake.video_bytes
