"""KreaProvider against FakeKrea: request shapes, job states, errors, cancel and asset uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import anyio
import httpx2
import pytest

from aleph_mcp.edits.intake import validate_args
from aleph_mcp.edits.requests import EditArgs
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
from aleph_mcp.providers.krea import STATUS, KreaProvider
from tests.conftest import make_settings
from tests.fakes.base import Fault, State
from tests.fakes.krea import FakeKrea
from tests.fakes.multipart import FormPart
from tests.fakes.server import serve_fakes
from tests.providers.adapters import RUNWAY_PIXELS, STYLE, VIDEO, submit_and_poll, submit_error

KEY = "krea-secret-key-0123456789abcdef"
BASE = "https://api.krea.test"
FULL = EditRequest(
    prompt="Make it snow",
    video=VIDEO,
    model="aleph",
    aspect_ratio="21:9",
    seed=7,
    reference_image=STYLE,
)
MINIMAL = EditRequest(prompt="Make it snow", video=VIDEO, model="aleph")


def make(client: httpx2.AsyncClient, key: str = KEY, base_url: str = BASE) -> KreaProvider:
    return KreaProvider(client, api_key=key, base_url=base_url)


async def test_submit_sends_only_documented_keys_with_bearer_auth() -> None:
    """The create is one POST /generate/video/runway/aleph with Krea's field names and nothing else."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        job_id = await make(client).submit(FULL)
    [create] = fake.creates
    assert (create.method, create.path) == ("POST", "/generate/video/runway/aleph")
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.body == {
        "prompt": "Make it snow",
        "init_video": VIDEO,
        "ratio": "1584:672",
        "seed": 7,
        "references": [{"type": "image", "uri": STYLE}],
    }
    assert job_id in fake.tasks


async def test_submit_omits_optional_fields_that_are_not_set() -> None:
    """Without ratio, seed or reference the body is just prompt and init_video."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await make(client).submit(MINIMAL)
    assert fake.creates[0].body == {"prompt": "Make it snow", "init_video": VIDEO}


@pytest.mark.parametrize(("ratio", "pixels"), RUNWAY_PIXELS.items())
async def test_each_aspect_ratio_maps_to_its_pixel_ratio(ratio: AspectRatio, pixels: str) -> None:
    """Our six ratios become Runway's pixel `ratio` values."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await make(client).submit(EditRequest(prompt="p", video=VIDEO, model="aleph", aspect_ratio=ratio))
    assert fake.creates[0].body["ratio"] == pixels


async def test_the_fake_rejects_unknown_create_keys_like_krea() -> None:
    """Krea's schema forbids extra keys, so the fake answers 422 naming them (adapter bugs show up)."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        raw = await client.post(
            f"{BASE}/generate/video/runway/aleph",
            json={"prompt": "p", "init_video": VIDEO, "model": "aleph"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert raw.status_code == 422
    assert raw.json() == {"error": "Unrecognized key(s) in object: 'model'"}


@pytest.mark.parametrize(
    ("state", "word", "expected"),
    [
        ("queued", "backlogged", "queued"),
        ("queued", "queued", "queued"),
        ("queued", "scheduled", "queued"),
        ("running", "processing", "running"),
        ("running", "sampling", "running"),
        ("running", "intermediate-complete", "running"),
        ("succeeded", "completed", "succeeded"),
        ("failed", "failed", "failed"),
        ("cancelled", "cancelled", "cancelled"),
    ],
)
async def test_every_vendor_status_word_maps_to_our_status(state: State, word: str, expected: str) -> None:
    """Each of Krea's nine job states lands on the right one of ours (intermediate-complete is not done)."""
    fake = FakeKrea(api_key=KEY, steps=(state,))
    fake.words[state] = word
    remote = await submit_and_poll(fake, make, MINIMAL)
    assert remote.status == expected
    assert word in STATUS.words  # mapped by the table, not by the unknown-word fallback


async def test_a_job_runs_from_queued_to_succeeded_with_the_first_result_url() -> None:
    """Polls follow queued -> running -> succeeded and the last one carries `result.urls[0]`."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        job_id = await provider.submit(FULL)
        seen = [await provider.poll(job_id) for _ in range(3)]
    assert [s.status for s in seen] == ["queued", "running", "succeeded"]
    assert seen[-1].output_url == fake.video_url(fake.tasks[job_id])
    assert fake.calls("status")[0].path == f"/jobs/{job_id}"


@pytest.mark.parametrize("location", ["error", "result"])
async def test_the_failure_reason_is_read_from_either_error_location(
    location: Literal["error", "result"],
) -> None:
    """Krea's reason reaches error_message whether it sits in `error` or in `result.error`."""
    fake = FakeKrea(api_key=KEY, steps=("failed",), failure_message="Input video flagged by moderation")
    fake.error_location = location
    remote = await submit_and_poll(fake, make, MINIMAL)
    assert (remote.status, remote.error_code) == ("failed", "generation_failed")
    assert remote.error_message == "Input video flagged by moderation"


async def test_a_failure_without_details_still_explains_itself() -> None:
    """A failed job with neither `error` nor `result.error` gets a readable default message."""
    fake = FakeKrea(api_key=KEY)
    fake.inject(Fault(kind="status", status=200, body={"job_id": "j1", "status": "failed", "result": None}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        remote = await make(client).poll("j1")
    assert remote.status == "failed"
    assert remote.error_message == "Krea reported the job failed without a reason."


async def test_a_completed_job_without_urls_is_malformed() -> None:
    """`completed` with no `result.urls` raises a transient malformed-response error."""
    fake = FakeKrea(api_key=KEY)
    fake.inject(Fault(kind="status", status=200, body={"job_id": "j1", "status": "completed", "result": {}}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(TransientProviderError) as caught:
            await make(client).poll("j1")
    assert caught.value.code == "malformed_response"
    assert "without an output URL" in caught.value.message


async def test_a_create_answer_without_a_job_id_is_malformed_and_may_have_created() -> None:
    """A 2xx create without `job_id` is an unknown outcome: transient, not_created False."""
    fake = FakeKrea(api_key=KEY)
    fake.inject(Fault(kind="create", status=200, body={"status": "queued"}))
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, TransientProviderError)
    assert error.code == "malformed_response"
    assert error.not_created is False


async def test_a_wrong_api_key_raises_auth_failed() -> None:
    """A 401 becomes AuthFailed with Krea's text; nothing was created."""
    fake = FakeKrea(api_key=KEY)
    error = await submit_error(fake, make, MINIMAL, "wrong-key-0123456789")
    assert isinstance(error, AuthFailed)
    assert error.not_created is True
    assert "You are not authenticated." in error.message


async def test_an_invalid_body_is_fatal_with_the_vendor_text() -> None:
    """A 400 is a FatalProviderError carrying Krea's `error` string."""
    fake = FakeKrea(api_key=KEY)
    error = await submit_error(fake, make, EditRequest(prompt="x" * 1001, video=VIDEO, model="aleph"))
    assert isinstance(error, FatalProviderError)
    assert error.status_code == 400
    assert error.not_created is True
    assert "'prompt' must be at most 1000 characters" in error.message


async def test_a_402_says_the_account_is_out_of_credits() -> None:
    """Krea's 402 is reported as insufficient credits."""
    fake = FakeKrea(api_key=KEY)
    fake.inject(Fault(kind="create", status=402, body={"error": "You have run out of credits."}))
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, FatalProviderError)
    assert error.code == "insufficient_credits"
    assert "run out of credits" in error.message


async def test_a_429_with_retry_after_raises_rate_limited() -> None:
    """Krea's 429 (too many concurrent jobs) becomes RateLimited with the Retry-After seconds."""
    fake = FakeKrea(api_key=KEY)
    body = {"error": "You have reached the maximum number of concurrent jobs."}
    fake.inject(Fault(kind="create", status=429, body=body, headers={"Retry-After": "12"}))
    error = await submit_error(fake, make, MINIMAL)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0
    assert error.not_created is True
    assert "maximum number of concurrent jobs" in error.message


async def test_cancel_deletes_a_queued_job_which_then_reads_cancelled() -> None:
    """DELETE /jobs/{id} on a queued job cancels it; the next poll says cancelled."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        job_id = await provider.submit(MINIMAL)
        await provider.cancel(job_id)
        remote = await provider.poll(job_id)
    [cancel] = fake.calls("cancel")
    assert (cancel.method, cancel.path) == ("DELETE", f"/jobs/{job_id}")
    assert cancel.headers["authorization"] == f"Bearer {KEY}"
    assert remote.status == "cancelled"
    assert fake.tasks[job_id].cancelled


async def test_cancel_of_a_finished_job_raises_cannot_cancel() -> None:
    """Krea refuses to cancel past `processing`; the adapter says why in a CannotCancel."""
    fake = FakeKrea(api_key=KEY, steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        job_id = await provider.submit(MINIMAL)
        with pytest.raises(CannotCancel) as caught:
            await provider.cancel(job_id)
    assert "only while it is queued or processing" in caught.value.message
    assert "cannot be cancelled in status 'completed'" in caught.value.message


async def test_cancel_of_an_unknown_job_raises_remote_not_found() -> None:
    """A 404 on DELETE stays RemoteNotFound rather than becoming CannotCancel."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(RemoteNotFound, match="Job not found"):
            await make(client).cancel("no-such-job")


async def test_upload_streams_the_file_as_multipart_and_returns_image_url(tmp_path: Path) -> None:
    """POST /assets receives the file part; its `image_url` comes back and progress is reported."""
    content = bytes(range(256)) * 1000
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(content)
    progress: list[tuple[int, int | None]] = []

    async def on_progress(sent: int, total: int | None) -> None:
        progress.append((sent, total))

    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        url = await provider.upload(clip, on_progress=on_progress)
        await provider.submit(EditRequest(prompt="p", video=url, model="aleph"))
    [upload] = fake.calls("upload")
    assert (upload.path, upload.headers["authorization"]) == ("/assets", f"Bearer {KEY}")
    [parts] = fake.uploads
    assert parts["file"] == FormPart("file", "clip.mp4", "video/mp4", content)
    assert url.endswith(".mp4")
    assert url.startswith(fake.url("/files/assets/"))
    assert fake.creates[0].body["init_video"] == url
    assert progress == [(0, len(content)), (len(content), len(content))]


async def test_a_file_over_75_mb_is_refused_before_any_upload(tmp_path: Path) -> None:
    """A file above Krea's 75 MB limit is refused by the intake with its size, before any request."""
    (tmp_path / "inputs").mkdir()
    clip = tmp_path / "inputs" / "big.mp4"
    with clip.open("wb") as handle:
        handle.truncate(75 * 1024 * 1024 + 1)  # sparse: no real 75 MB written
    fake = FakeKrea(api_key=KEY)
    args = EditArgs(prompt="Make it snow", video=str(clip), provider="krea")
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(InvalidInput, match="78643201 bytes; krea accepts at most 78643200"):
            validate_args(args, {"krea": make(client)}, make_settings(tmp_path, krea_api_key=KEY))
    assert fake.requests == []


async def test_upload_of_a_missing_file_raises_invalid_input(tmp_path: Path) -> None:
    """A path that does not exist is an InvalidInput, not a crash."""
    fake = FakeKrea(api_key=KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(InvalidInput, match=r"Cannot read nope\.mp4"):
            await make(client).upload(tmp_path / "nope.mp4")


async def test_the_api_key_never_appears_in_error_messages() -> None:
    """Vendor text echoing the key is scrubbed, both in raised errors and in failure reasons."""
    fake = FakeKrea(api_key=KEY, steps=("failed",), failure_message=f"worker saw key {KEY}")
    fake.inject(Fault(kind="create", status=400, body={"error": f"Bad token Bearer {KEY} ({KEY})"}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = make(client)
        with pytest.raises(FatalProviderError) as caught:
            await provider.submit(MINIMAL)
        remote = await provider.poll(await provider.submit(MINIMAL))
    assert KEY not in caught.value.message
    assert "***" in caught.value.message
    assert remote.error_message == "worker saw key ***"


def test_the_status_table_covers_every_word_the_fake_can_emit() -> None:
    """STATUS knows every job state the fake (and Krea's schema) can send."""
    emitted = set(FakeKrea.vendor_words) | set(FakeKrea.words.values())
    assert emitted <= set(STATUS.words)


def test_capabilities_match_what_the_adapter_sends() -> None:
    """All six ratios, cancel and upload, 75 MB inputs, no data URIs."""
    caps = KreaProvider.capabilities
    assert caps.aspect_ratios == frozenset(ASPECT_RATIOS)
    assert (caps.default_model, caps.can_cancel, caps.can_upload) == ("aleph", True, True)
    assert (caps.url_max_bytes, caps.data_uri_max_bytes) == (75 * 1024 * 1024, None)
    assert caps.upload_max_bytes == 75 * 1024 * 1024


async def test_upload_and_a_whole_edit_work_against_the_fake_on_loopback(tmp_path: Path) -> None:
    """Upload, submit, poll to the end and download the output through a real HTTP server."""
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"moov" * 5000)
    fake = FakeKrea(api_key=KEY)
    with serve_fakes({"krea": fake}) as origin, anyio.fail_after(10):
        async with httpx2.AsyncClient() as client:
            provider = make(client, base_url=f"{origin}/krea")
            url = await provider.upload(clip)
            job_id = await provider.submit(EditRequest(prompt="p", video=url, model="aleph"))
            statuses = [await provider.poll(job_id) for _ in range(3)]
            assert statuses[-1].output_url is not None
            video = await client.get(statuses[-1].output_url)
    assert fake.uploads[0]["file"].content == b"moov" * 5000
    assert fake.uploads[0]["file"].content_type == "video/quicktime"
    assert [s.status for s in statuses] == ["queued", "running", "succeeded"]
    assert video.content == fake.video_bytes
