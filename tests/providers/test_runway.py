"""The Runway adapter against FakeRunway: create bodies, status words, errors, guarded cancel, uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from aleph_mcp import errors
from aleph_mcp.edits.intake import validate_args
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.models import ASPECT_RATIOS, AspectRatio, EditRequest
from aleph_mcp.providers.runway import CAPABILITIES, STATUS, RunwayProvider
from tests.conftest import make_settings
from tests.fakes.base import Fault, State
from tests.fakes.runway import FakeRunway
from tests.fakes.server import serve_fakes
from tests.providers.adapters import RUNWAY_PIXELS

VIDEO = "https://cdn.example.com/in/clip.mp4"
STYLE = "https://cdn.example.com/in/style.jpg"


def provider(client: httpx2.AsyncClient, fake: FakeRunway, **kwargs: Any) -> RunwayProvider:
    key = kwargs.pop("api_key", fake.api_key)
    return RunwayProvider(client, api_key=key, base_url="https://api.dev.runwayml.com", **kwargs)


def edit(**kwargs: Any) -> EditRequest:
    values: dict[str, Any] = {"prompt": "Make it winter", "video": VIDEO, "model": "aleph2", **kwargs}
    return EditRequest(**values)


async def run_to(fake: FakeRunway, state: State, word: str | None = None) -> tuple[Any, str]:
    """Submit one edit whose first status read reports `state` (as `word`, when given); return the poll."""
    fake.steps = (state,)
    if word is not None:
        fake.words[state] = word
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        runway = provider(client, fake)
        task_id = await runway.submit(edit())
        return await runway.poll(task_id), task_id


# -- submit ---------------------------------------------------------------------------------------


async def test_submit_sends_the_aleph2_body_with_auth_and_version_headers() -> None:
    """aleph2 gets model, videoUri, promptText, seed and our ratio as targetAspectRatio, with both headers."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        task_id = await provider(client, fake).submit(edit(seed=7, aspect_ratio="21:9"))
    (create,) = fake.creates
    assert task_id in fake.tasks
    assert create.path == "/v1/video_to_video"
    assert create.json == {
        "model": "aleph2",
        "videoUri": VIDEO,
        "promptText": "Make it winter",
        "seed": 7,
        "targetAspectRatio": "21:9",
    }
    assert create.headers["authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["x-runway-version"] == "2024-11-06"


async def test_submit_omits_optional_fields_that_are_not_set() -> None:
    """Without seed, ratio or reference the body holds only the three required fields."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await provider(client, fake).submit(edit())
    assert fake.creates[0].json == {"model": "aleph2", "videoUri": VIDEO, "promptText": "Make it winter"}


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
async def test_aleph2_takes_every_one_of_our_ratios_as_is(ratio: AspectRatio) -> None:
    """Each of our six ratios is a valid aleph2 targetAspectRatio unchanged."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await provider(client, fake).submit(edit(aspect_ratio=ratio))
    assert fake.creates[0].json["targetAspectRatio"] == ratio


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
async def test_gen4_aleph_maps_ratios_to_pixels_and_sends_the_reference(ratio: AspectRatio) -> None:
    """gen4_aleph gets `ratio` in pixels and the reference image as `references`."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        await provider(client, fake).submit(
            edit(model="gen4_aleph", aspect_ratio=ratio, reference_image=STYLE)
        )
    assert fake.creates[0].json == {
        "model": "gen4_aleph",
        "videoUri": VIDEO,
        "promptText": "Make it winter",
        "ratio": RUNWAY_PIXELS[ratio],
        "references": [{"type": "image", "uri": STYLE}],
    }


async def intake(tmp_path: Path, fake: FakeRunway, **args: Any) -> None:
    """The intake's checks (validate_args) for one Runway request; the adapter itself checks nothing."""
    values: dict[str, Any] = {"prompt": "Make it winter", "video": VIDEO, "provider": "runway", **args}
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        providers = {"runway": provider(client, fake)}
        validate_args(EditArgs(**values), providers, make_settings(tmp_path, runway_api_key=fake.api_key))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"reference_image": STYLE}, "model='gen4_aleph'"),
        ({"model": "gen3a_turbo"}, "aleph2, gen4_aleph"),
        ({"watermark": "mine"}, "watermark"),
        ({"prompt": "🎬" * 600}, "1200 characters; runway accepts at most 1000"),  # UTF-16 units
    ],
    ids=["reference-on-aleph2", "unknown-model", "watermark", "prompt-too-long"],
)
async def test_the_intake_refuses_what_runway_cannot_take_before_sending(
    tmp_path: Path, args: dict[str, Any], words: str
) -> None:
    """Reference images on aleph2, unknown models, watermarks and long prompts never leave the process."""
    fake = FakeRunway()
    with pytest.raises(errors.InvalidInput, match=words.replace("(", r"\(")):
        await intake(tmp_path, fake, **args)
    assert fake.requests == []


async def test_a_create_answer_without_an_id_is_malformed_and_may_have_created() -> None:
    """A 2xx create body with no id is transient and not_created stays False (the outcome is unknown)."""
    fake = FakeRunway()
    fake.inject(Fault(kind="create", status=200, body={"status": "PENDING"}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.TransientProviderError) as caught:
            await provider(client, fake).submit(edit())
    assert caught.value.code == "malformed_response"
    assert caught.value.not_created is False


async def test_an_unavailable_gen4_aleph_suggests_aleph2() -> None:
    """Runway's 403 'Model variant gen4_aleph is not available' becomes a refusal that names aleph2."""
    fake = FakeRunway()
    fake.unavailable = {"gen4_aleph"}
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.FatalProviderError) as caught:
            await provider(client, fake).submit(edit(model="gen4_aleph"))
    assert caught.value.status_code == 403
    assert caught.value.not_created is True
    assert caught.value.code == "model_unavailable"
    assert "Model variant gen4_aleph is not available" in caught.value.message
    assert "Use model aleph2" in caught.value.message


async def test_a_validation_error_carries_runways_reason() -> None:
    """A 400 from the fake's body validation becomes a FatalProviderError quoting the field."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.FatalProviderError) as caught:
            await provider(client, fake).submit(edit(video="ftp://example.com/in.mp4"))
    assert caught.value.status_code == 400
    assert caught.value.not_created is True
    assert "videoUri: must be an HTTPS URL" in caught.value.message


async def test_the_fake_refuses_calls_without_the_version_header() -> None:
    """Like Runway, the fake answers 400 when X-Runway-Version is missing, so the adapter must send it."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        response = await client.post(
            "https://api.dev.runwayml.com/v1/video_to_video",
            json={"model": "aleph2", "videoUri": VIDEO},
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
    assert response.status_code == 400
    assert "X-Runway-Version" in response.json()["error"]
    assert fake.tasks == {}


# -- transport and HTTP errors --------------------------------------------------------------------


async def test_a_wrong_key_is_an_auth_failure_that_created_nothing() -> None:
    """401 becomes AuthFailed with not_created True."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.AuthFailed) as caught:
            await provider(client, fake, api_key="key_wrong").submit(edit())
    assert caught.value.not_created is True
    assert "Invalid API key" in caught.value.message


async def test_429_is_rate_limited_with_retry_after() -> None:
    """A daily-quota 429 becomes RateLimited carrying Retry-After seconds."""
    fake = FakeRunway()
    body = {"error": "You have exceeded your daily generation limit"}
    fake.inject(Fault(kind="create", status=429, body=body, headers={"Retry-After": "12"}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.RateLimited) as caught:
            await provider(client, fake).submit(edit())
    assert caught.value.retry_after == 12.0
    assert caught.value.not_created is True
    assert "daily generation limit" in caught.value.message


async def test_the_api_key_never_reaches_an_error_message() -> None:
    """Vendor text echoing the key is scrubbed, both in raised errors and in failure reasons."""
    fake = FakeRunway()
    fake.inject(Fault(kind="create", status=400, body={"error": f"bad request for {fake.api_key}"}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.FatalProviderError) as caught:
            await provider(client, fake).submit(edit())
    assert fake.api_key not in str(caught.value)
    assert "bad request for ***" in caught.value.message

    fake.failure_message = f"Render failed for key {fake.api_key}"
    status, _ = await run_to(fake, "failed")
    assert status.error_message == "Render failed for key ***"


# -- poll -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "word", "expected"),
    [
        ("queued", "PENDING", "queued"),
        ("queued", "THROTTLED", "queued"),
        ("running", "RUNNING", "running"),
        ("succeeded", "SUCCEEDED", "succeeded"),
        ("failed", "FAILED", "failed"),
        ("cancelled", "CANCELLED", "cancelled"),
    ],
)
async def test_every_runway_status_word_maps_to_ours(state: State, word: str, expected: str) -> None:
    """Each vendor word reaches our vocabulary through the status table."""
    status, _ = await run_to(FakeRunway(), state, word)
    assert status.status == expected
    assert word.lower() in STATUS.words  # mapped by the table, not by the unknown-word fallback


async def test_a_running_task_reports_its_progress() -> None:
    """RUNNING's progress (0..1) is passed on."""
    status, _ = await run_to(FakeRunway(), "running")
    assert status.progress == pytest.approx(0.42)


async def test_a_succeeded_task_gives_the_output_and_preview_urls() -> None:
    """output[0] is the video and the undocumented previewUrls[0] the thumbnail."""
    fake = FakeRunway()
    status, task_id = await run_to(fake, "succeeded")
    task = fake.tasks[task_id]
    assert status.output_url == fake.video_url(task)
    assert status.thumbnail_url == fake.image_url(task)


async def test_a_succeeded_task_without_previews_has_no_thumbnail() -> None:
    """previewUrls is undocumented, so its absence is fine."""
    fake = FakeRunway()
    fake.previews = False
    status, _ = await run_to(fake, "succeeded")
    assert status.output_url is not None
    assert status.thumbnail_url is None


async def test_a_succeeded_task_without_output_is_malformed() -> None:
    """SUCCEEDED with an empty output list raises a transient malformed-response error."""
    fake = FakeRunway()
    fake.inject(Fault(kind="status", status=200, body={"id": "t-1", "status": "SUCCEEDED", "output": []}))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.TransientProviderError, match="without an output URL"):
            await provider(client, fake).poll("t-1")


async def test_a_failed_task_carries_runways_reason_and_code() -> None:
    """`failure` becomes error_message and `failureCode` error_code."""
    fake = FakeRunway()
    status, _ = await run_to(fake, "failed")
    assert status.error_message == fake.failure_message
    assert status.error_code == "SAFETY.INPUT.TEXT"


async def test_a_failed_task_without_a_code_is_provider_failed() -> None:
    """failureCode is optional; without it the code is provider_failed."""
    fake = FakeRunway()
    fake.failure_code = None
    status, _ = await run_to(fake, "failed")
    assert status.error_code == "provider_failed"
    assert status.error_message == fake.failure_message


async def test_polling_an_unknown_task_is_remote_not_found() -> None:
    """A 404 on the task read becomes RemoteNotFound."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.RemoteNotFound):
            await provider(client, fake).poll("no-such-task")


def test_the_status_table_covers_every_word_the_fake_can_send() -> None:
    """STATUS knows exactly Runway's six words, and the fake emits only those."""
    assert set(STATUS.words) == {w.lower() for w in FakeRunway.vendor_words}
    assert set(FakeRunway.words.values()) <= set(FakeRunway.vendor_words)


# -- cancel ---------------------------------------------------------------------------------------


async def test_cancel_deletes_a_live_task_after_checking_it() -> None:
    """A PENDING/RUNNING task gets GET then DELETE, and reads as cancelled afterwards."""
    fake = FakeRunway(steps=("queued", "running", "running"))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        runway = provider(client, fake)
        task_id = await runway.submit(edit())
        await runway.cancel(task_id)
        status = await runway.poll(task_id)
    assert [r.method for r in fake.requests] == ["POST", "GET", "DELETE", "GET"]
    assert fake.calls("cancel")[0].headers["x-runway-version"] == "2024-11-06"
    assert status.status == "cancelled"
    assert fake.deleted == []


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
async def test_cancel_never_deletes_a_finished_task(state: State) -> None:
    """On a finished task cancel raises CannotCancel and sends no DELETE (it would delete the output)."""
    fake = FakeRunway(steps=(state,))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        runway = provider(client, fake)
        task_id = await runway.submit(edit())
        with pytest.raises(errors.CannotCancel, match="already finished"):
            await runway.cancel(task_id)
    assert fake.calls("cancel") == []
    assert task_id in fake.tasks


# -- upload ---------------------------------------------------------------------------------------


async def test_upload_posts_the_fields_then_the_file_and_returns_the_runway_uri(tmp_path: Path) -> None:
    """The slot request names the file; the bucket gets every field first, then the file, without our key."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 300)
    progress: list[tuple[int, int | None]] = []

    async def on_progress(sent: int, total: int | None) -> None:
        progress.append((sent, total))

    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        uri = await provider(client, fake).upload(clip, on_progress=on_progress)
    (slot,) = fake.calls("upload_init")
    assert slot.json == {"filename": "clip.mp4", "type": "ephemeral"}
    (received,) = fake.uploads
    assert uri.startswith("runway://ephemeral/")
    assert received["fields"] == fake.slots[received["fields"]["key"]]
    assert received["order"] == ["key", "policy", "x-amz-signature", "file"]
    assert received["filename"] == "clip.mp4"
    assert received["content"] == clip.read_bytes()
    bucket = fake.calls("upload")[0]
    assert "authorization" not in bucket.headers
    assert "x-runway-version" not in bucket.headers
    assert progress == [(0, clip.stat().st_size), (clip.stat().st_size, clip.stat().st_size)]


async def test_upload_accepts_a_storage_answer_that_is_not_json(tmp_path: Path) -> None:
    """Storage may answer 201 with XML; any 2xx from the bucket means the file is stored."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    fake = FakeRunway()
    fake.inject(Fault(kind="upload", status=201, body="<PostResponse><Key>k</Key></PostResponse>"))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        uri = await provider(client, fake).upload(clip)
    assert uri.startswith("runway://ephemeral/")


async def test_a_storage_refusal_is_a_fatal_error(tmp_path: Path) -> None:
    """An XML 403 from the bucket (an expired policy) becomes a FatalProviderError."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    fake = FakeRunway()
    xml = "<Error><Code>AccessDenied</Code><Message>Policy expired</Message></Error>"
    fake.inject(Fault(kind="upload", status=403, body=xml))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(errors.FatalProviderError, match="Policy expired") as caught:
            await provider(client, fake).upload(clip)
    assert caught.value.status_code == 403


async def test_files_over_200_mb_are_refused_before_any_upload(tmp_path: Path) -> None:
    """Runway uploads stop at 200 MB; a bigger (sparse) file is refused by the intake with no request."""
    (tmp_path / "inputs").mkdir()
    clip = tmp_path / "inputs" / "big.mp4"
    with clip.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    fake = FakeRunway()
    await intake(tmp_path, fake, video=str(clip))  # exactly 200 MB is fine
    with clip.open("r+b") as handle:
        handle.truncate(200 * 1024 * 1024 + 1)
    with pytest.raises(errors.InvalidInput, match=r"at most 209715200.*200 MB"):
        await intake(tmp_path, fake, video=str(clip))
    assert fake.requests == []


# -- capabilities and the served fake -------------------------------------------------------------


def test_capabilities_default_to_aleph2_and_allow_every_ratio() -> None:
    """aleph2 is the default model; all six ratios, seed, reference, cancel and upload are on."""
    assert CAPABILITIES.models == ("aleph2", "gen4_aleph")
    assert CAPABILITIES.aspect_ratios == frozenset(ASPECT_RATIOS)
    assert (CAPABILITIES.seed, CAPABILITIES.reference_image, CAPABILITIES.watermark) == (True, True, False)
    assert (CAPABILITIES.can_cancel, CAPABILITIES.can_upload) == (True, True)


async def test_the_whole_flow_works_against_the_fake_served_on_loopback(tmp_path: Path) -> None:
    """Upload, submit and poll to success through a real HTTP server with the fake mounted under /runway."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video-bytes" * 1000)
    fake = FakeRunway()
    with serve_fakes({"runway": fake}) as origin:
        async with httpx2.AsyncClient() as client:
            runway = RunwayProvider(client, api_key=fake.api_key, base_url=f"{origin}/runway")
            uri = await runway.upload(clip)
            task_id = await runway.submit(edit(video=uri))
            states = [(await runway.poll(task_id)).status for _ in range(3)]
            final = await runway.poll(task_id)
            video = await client.get(final.output_url or "")
    assert fake.uploads[0]["content"] == clip.read_bytes()
    assert states == ["queued", "running", "succeeded"]
    assert video.content == fake.video_bytes
