"""KieProvider against FakeKie: create body, successFlag mapping, envelopes, errors and the upload host."""

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
    ProviderError,
    RateLimited,
    RemoteNotFound,
    TransientProviderError,
)
from aleph_mcp.models import ASPECT_RATIOS, EditRequest
from aleph_mcp.providers.kie import CAPABILITIES, STATUS, KieProvider, unique_name
from tests.fakes.base import Fault, State
from tests.fakes.kie import CREATE, RECORD_DETAIL, RECORD_INFO, FakeKie
from tests.fakes.server import serve_fakes

BASE = "https://api.kie.test"
UPLOAD_BASE = "https://upload.kie.test"


def edit(**options: Any) -> EditRequest:
    return EditRequest(
        prompt="Make it snow", video="https://cdn.example.com/in.mp4", model="aleph", **options
    )


@asynccontextmanager
async def kie(fake: FakeKie, *, api_key: str | None = None) -> AsyncIterator[KieProvider]:
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        yield KieProvider(
            client, api_key=api_key or fake.api_key, base_url=BASE, upload_base_url=UPLOAD_BASE, timeout=5
        )


async def test_submit_sends_every_option_in_kie_camel_case_with_bearer_auth() -> None:
    """All our fields reach kie under its own names, with the Bearer key, and the task id comes back."""
    fake = FakeKie()
    request = edit(
        aspect_ratio="9:16", seed=42, reference_image="https://cdn.example.com/s.png", watermark="hi"
    )
    async with kie(fake) as provider:
        task_id = await provider.submit(request)
    (sent,) = fake.creates
    assert (sent.method, sent.path) == ("POST", CREATE)
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json == {
        "prompt": "Make it snow",
        "videoUrl": "https://cdn.example.com/in.mp4",
        "aspectRatio": "9:16",
        "seed": 42,
        "referenceImage": "https://cdn.example.com/s.png",
        "waterMark": "hi",
    }
    assert task_id in fake.tasks


async def test_submit_omits_unset_options_and_never_sends_a_callback_url() -> None:
    """Only prompt and videoUrl are sent when nothing else is set; we poll, so no callBackUrl."""
    fake = FakeKie()
    async with kie(fake) as provider:
        await provider.submit(edit())
    assert fake.creates[0].json == {"prompt": "Make it snow", "videoUrl": "https://cdn.example.com/in.mp4"}


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
async def test_each_of_our_ratios_reaches_kie_unchanged(ratio: Any) -> None:
    """kie's aspectRatio enum is our six ratios, so each passes through as it is."""
    fake = FakeKie()
    async with kie(fake) as provider:
        await provider.submit(edit(aspect_ratio=ratio))
    assert fake.creates[0].json["aspectRatio"] == ratio


@pytest.mark.parametrize(
    ("state", "flag", "expected"),
    [
        ("queued", "0", "running"),
        ("running", "0", "running"),
        ("succeeded", "1", "succeeded"),
        ("failed", "0", "failed"),
        ("failed", "2", "failed"),
        ("failed", "3", "failed"),
        ("running", "2", "failed"),
        ("running", "7", "failed"),
    ],
)
async def test_poll_maps_each_success_flag(state: State, flag: str, expected: str) -> None:
    """successFlag 1 is success, 0 runs unless an error is set, and any other flag is a failure."""
    fake = FakeKie(steps=(state,))
    fake.words = {**FakeKie.words, state: flag}
    async with kie(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == expected
    if state != "failed" and expected == "failed":  # no vendor error text: the message names the flag
        assert f"successFlag {flag}" in (remote.error_message or "")


@pytest.mark.parametrize(("code", "message"), [(400, ""), (0, "Upstream rejected the video")])
async def test_flag_zero_with_either_error_field_is_a_failure(code: int, message: str) -> None:
    """successFlag 0 means failed when errorCode is non-zero or errorMessage is non-empty."""
    fake = FakeKie(steps=("failed",), failure_message=message)
    fake.failure_code = code
    async with kie(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == "failed"
    assert remote.error_message == (message or "kie reported the edit failed (successFlag 0, errorCode 400).")
    assert remote.error_code == ("kie_400" if code else "generation_failed")


async def test_a_finished_task_reports_its_video_and_thumbnail() -> None:
    """The task runs through its steps and ends with resultVideoUrl and resultImageUrl."""
    fake = FakeKie()
    async with kie(fake) as provider:
        task_id = await provider.submit(edit())
        seen = [await provider.poll(task_id) for _ in range(3)]
    task = fake.tasks[task_id]
    assert [s.status for s in seen] == ["running", "running", "succeeded"]
    assert seen[-1].output_url == fake.video_url(task)
    assert seen[-1].thumbnail_url == fake.image_url(task)
    assert fake.calls("status")[0].params == {"taskId": task_id}


async def test_a_failed_task_carries_kie_reason_and_code() -> None:
    """kie's errorMessage becomes error_message and errorCode the error_code."""
    fake = FakeKie(steps=("failed",), failure_message="Your prompt was caught by our AI moderator.")
    async with kie(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.error_message == "Your prompt was caught by our AI moderator."
    assert remote.error_code == "kie_400"


async def test_success_without_a_video_url_is_malformed() -> None:
    """successFlag 1 with no response.resultVideoUrl raises a retryable malformed-response error."""
    fake = FakeKie()
    data = {"taskId": "t1", "response": None, "successFlag": 1, "errorCode": 0, "errorMessage": ""}
    fake.inject(Fault(kind="status", status=200, body={"code": 200, "msg": "success", "data": data}))
    async with kie(fake) as provider:
        with pytest.raises(TransientProviderError, match="without an output URL") as caught:
            await provider.poll("t1")
    assert caught.value.code == "malformed_response"


async def test_poll_falls_back_to_record_detail_when_record_info_is_missing() -> None:
    """A 404 from record-info leads to one read of record-detail, the path the generate page names."""
    fake = FakeKie(steps=("succeeded",))
    fake.status_paths = (RECORD_DETAIL,)
    async with kie(fake) as provider:
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.status == "succeeded"
    assert [r.path for r in fake.calls("status")] == [RECORD_INFO, RECORD_DETAIL]


async def test_poll_reads_record_info_only_when_it_answers() -> None:
    """The documented record-info path answers, so record-detail is never asked."""
    fake = FakeKie()
    async with kie(fake) as provider:
        await provider.poll(await provider.submit(edit()))
    assert [r.path for r in fake.calls("status")] == [RECORD_INFO]


async def test_an_unknown_task_is_remote_not_found() -> None:
    """kie's 404 envelope for an unknown task id becomes RemoteNotFound after both paths are tried."""
    fake = FakeKie()
    async with kie(fake) as provider:
        with pytest.raises(RemoteNotFound, match="Task not found"):
            await provider.poll("no-such-task")
    assert len(fake.calls("status")) == 2


@pytest.mark.parametrize("errors_as_http", [False, True])
async def test_a_wrong_key_is_auth_failed_and_nothing_was_created(errors_as_http: bool) -> None:
    """kie's 401 (envelope on HTTP 200, or HTTP 401) raises AuthFailed with not_created set."""
    fake = FakeKie()
    fake.errors_as_http = errors_as_http
    async with kie(fake, api_key="wrong-key-98765") as provider:
        with pytest.raises(AuthFailed, match="You do not have access permissions") as caught:
            await provider.submit(edit())
    assert caught.value.not_created is True
    assert not fake.tasks


@pytest.mark.parametrize("errors_as_http", [False, True])
async def test_kie_validation_errors_are_fatal_with_kie_text(errors_as_http: bool) -> None:
    """A prompt kie refuses (422) is a FatalProviderError quoting kie's message."""
    fake = FakeKie()
    fake.errors_as_http = errors_as_http
    async with kie(fake) as provider:
        with pytest.raises(FatalProviderError, match="prompt cannot exceed 2048 characters") as caught:
            await provider.submit(
                EditRequest(prompt="x" * 2049, video="https://cdn.example.com/a.mp4", model="aleph")
            )
    assert (caught.value.status_code, caught.value.not_created) == (422, True)


async def test_http_400_is_fatal_with_kie_text() -> None:
    """An HTTP 400 with kie's envelope is fatal and names kie's reason."""
    fake = FakeKie()
    fake.inject(Fault(kind="create", status=400, body={"code": 400, "msg": "Invalid request parameters"}))
    async with kie(fake) as provider:
        with pytest.raises(FatalProviderError, match="Invalid request parameters"):
            await provider.submit(edit())


async def test_http_429_with_retry_after_is_rate_limited() -> None:
    """HTTP 429 becomes RateLimited carrying the Retry-After seconds."""
    fake = FakeKie()
    body = {"code": 429, "msg": "Too many requests"}
    fake.inject(Fault(kind="create", status=429, body=body, headers={"Retry-After": "17"}))
    async with kie(fake) as provider:
        with pytest.raises(RateLimited) as caught:
            await provider.submit(edit())
    assert (caught.value.retry_after, caught.value.not_created) == (17.0, True)


@pytest.mark.parametrize(
    ("code", "error", "not_created"),
    [
        (429, RateLimited, True),
        (402, FatalProviderError, True),
        (451, FatalProviderError, True),
        (455, TransientProviderError, True),
        (500, TransientProviderError, False),
    ],
)
async def test_envelope_errors_on_http_200_are_classified(
    code: int, error: type[ProviderError], not_created: bool
) -> None:
    """An HTTP 200 whose envelope code is not 200 raises the error that code means."""
    fake = FakeKie()
    fake.inject(
        Fault(kind="create", status=200, body={"code": code, "msg": f"kie says {code}", "data": None})
    )
    async with kie(fake) as provider:
        with pytest.raises(error, match=f"kie says {code}") as caught:
            await provider.submit(edit())
    assert type(caught.value) is error
    assert caught.value.not_created is not_created


async def test_a_create_answer_without_task_id_is_malformed() -> None:
    """code 200 with no data.taskId is a malformed answer whose outcome is unknown."""
    fake = FakeKie()
    fake.inject(Fault(kind="create", status=200, body={"code": 200, "msg": "success", "data": {}}))
    async with kie(fake) as provider:
        with pytest.raises(TransientProviderError, match="without a taskId") as caught:
            await provider.submit(edit())
    assert (caught.value.code, caught.value.not_created) == ("malformed_response", False)


async def test_cancel_is_refused_because_kie_has_no_cancel() -> None:
    """kie has no cancel API; cancel says so and sends nothing."""
    fake = FakeKie()
    async with kie(fake) as provider:
        with pytest.raises(CannotCancel, match="kie has no cancel API"):
            await provider.cancel("t1")
    assert fake.requests == []


async def test_upload_streams_the_file_to_the_upload_host(tmp_path: Path) -> None:
    """The file goes as multipart (file, uploadPath, fileName) to the upload host; downloadUrl comes back."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(bytes(range(256)) * 300)
    fake, hosts, progress = FakeKie(), [], []

    def handler(request: httpx2.Request) -> httpx2.Response:
        hosts.append(request.url.host)
        return fake(request)

    async def on_progress(sent: int, total: int | None) -> None:
        progress.append((sent, total))

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
        provider = KieProvider(client, api_key=fake.api_key, base_url=BASE, upload_base_url=UPLOAD_BASE)
        url = await provider.upload(clip, on_progress=on_progress)
    (form,) = fake.uploads
    assert form["file"].content == clip.read_bytes()
    name = unique_name(clip)
    assert (form["file"].filename, form["file"].content_type) == (name, "video/mp4")
    assert (form["uploadPath"].content, form["fileName"].content) == (b"aleph-mcp", name.encode())
    assert fake.calls("upload")[0].headers["authorization"] == f"Bearer {fake.api_key}"
    assert hosts == ["upload.kie.test"]
    assert url == f"{fake.origin}/files/aleph-mcp/{name}"
    assert progress == [(0, 76800), (76800, 76800)]


async def test_an_upload_refused_in_the_envelope_raises(tmp_path: Path) -> None:
    """An upload envelope error (HTTP 200, code 401) raises AuthFailed, not a URL."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    fake = FakeKie()
    async with kie(fake, api_key="wrong-key-98765") as provider:
        with pytest.raises(AuthFailed):
            await provider.upload(clip)


async def test_the_api_key_never_appears_in_errors() -> None:
    """Vendor text that echoes the key is scrubbed, in raised errors and in failure reasons."""
    fake = FakeKie(steps=("failed",), failure_message="Moderated; key test-key-0123456789 logged")
    echo = {"code": 422, "msg": f"Bad request from key {fake.api_key}", "data": None}
    fake.inject(Fault(kind="create", status=200, body=echo))
    fake.inject(Fault(kind="create", status=400, body=echo))
    async with kie(fake) as provider:
        for _ in range(2):
            with pytest.raises(FatalProviderError) as caught:
                await provider.submit(edit())
            assert fake.api_key not in str(caught.value)
            assert "***" in caught.value.message
        remote = await provider.poll(await provider.submit(edit()))
    assert remote.error_message == "Moderated; key *** logged"


def test_the_status_table_covers_every_flag_the_fake_emits() -> None:
    """Every successFlag FakeKie can report, and kie's 2/3 failure flags, are in STATUS."""
    assert set(FakeKie.words.values()) | {"2", "3"} <= set(STATUS.words)
    assert [STATUS(w) for w in ("0", "1", "2", "3")] == ["running", "succeeded", "failed", "failed"]


def test_capabilities_match_kie_documented_limits() -> None:
    """One model, all six ratios, 10 MB input, uploads but no cancel and no data URIs."""
    assert CAPABILITIES.default_model == "aleph"
    assert CAPABILITIES.aspect_ratios == frozenset(ASPECT_RATIOS)
    assert (CAPABILITIES.url_max_bytes, CAPABILITIES.data_uri_max_bytes) == (10 * 1024 * 1024, None)
    assert CAPABILITIES.upload_max_bytes == 10 * 1024 * 1024
    assert (CAPABILITIES.can_upload, CAPABILITIES.can_cancel) == (True, False)


async def test_the_fake_serves_a_whole_edit_over_loopback(tmp_path: Path) -> None:
    """Through tests/fakes/server.py: upload, submit and poll to the end over real HTTP."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 4096)
    fake = FakeKie()
    with serve_fakes({"kie": fake}) as origin:
        async with httpx2.AsyncClient(trust_env=False) as client:
            base = f"{origin}/kie"
            provider = KieProvider(client, api_key=fake.api_key, base_url=base, upload_base_url=base)
            video = await provider.upload(clip)
            task_id = await provider.submit(EditRequest("Snow", video, "aleph"))
            statuses = [await provider.poll(task_id) for _ in range(3)]
            downloaded = await client.get(statuses[-1].output_url or "")
    assert video == f"{origin}/kie/files/aleph-mcp/{unique_name(clip)}"
    assert statuses[-1].status == "succeeded"
    assert downloaded.content == fake.video_bytes
