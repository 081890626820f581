"""EditService against fake vendor APIs: submit, refusals before any request, retries, waits, cancel."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from aleph_mcp.config import Settings
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import AlephError, CannotCancel, EditNotFound, InvalidInput, NotConfigured
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.providers.base import Capabilities, Provider
from aleph_mcp.store import EditStore, InMemoryEditStore
from tests.conftest import make_settings
from tests.fakes.base import FakeAPI, Fault
from tests.fakes.clock import START, FakeClock
from tests.fakes.crun import FakeCrun
from tests.fakes.kie import FakeKie
from tests.fakes.krea import FakeKrea
from tests.fakes.runway import FakeRunway
from tests.fakes.stub import StubProvider
from tests.fakes.vendors import adapter_for

KEY = "test-key-0123456789"
BASE = "http://fake.invalid"
VIDEO = "https://cdn.example.com/in/clip.mp4"
LEASE = 60.0
INTERVAL = 5.0


@dataclass
class Rig:
    fake: FakeAPI
    store: EditStore
    service: EditService
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)

    async def edits(self) -> list[Edit]:
        return (await self.store.list_edits(limit=100))[0]


def build_service(
    store: EditStore,
    providers: dict[str, Provider],
    settings: Settings,
    clock: FakeClock,
    sleeps: list[float],
    submitted: list[str],
) -> EditService:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def on_submitted(edit: Edit) -> None:
        submitted.append(edit.edit_id)

    return EditService(
        store,
        providers,
        settings,
        owner="p1",
        lease_seconds=LEASE,
        poll_interval=INTERVAL,
        on_submitted=on_submitted,
        clock=clock,
        sleep=sleep,
    )


@asynccontextmanager
async def rig_for(fake: FakeAPI, tmp_path: Path, **settings: Any) -> AsyncIterator[Rig]:
    """A service with one configured provider backed by `fake`."""
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = adapter_for(fake, client, api_key=KEY, base_url=BASE)
        store, clock = InMemoryEditStore(), FakeClock()
        sleeps: list[float] = []
        submitted: list[str] = []
        config = make_settings(tmp_path, **{f"{provider.name}_api_key": KEY, **settings})
        service = build_service(store, {provider.name: provider}, config, clock, sleeps, submitted)
        yield Rig(fake, store, service, clock, sleeps, submitted)


def args(provider: str = "runway", **kwargs: Any) -> EditArgs:
    values: dict[str, Any] = {"prompt": "Make it winter", "video": VIDEO, "provider": provider, **kwargs}
    return EditArgs(**values)


# -- submit ---------------------------------------------------------------------------------------


async def test_submit_stores_the_edit_before_the_create_and_the_task_id_after(tmp_path: Path) -> None:
    """At create time the edit is already stored without a task id, leased away from this process's poller."""
    store, clock = InMemoryEditStore(), FakeClock()
    seen: list[Edit] = []
    poller_could_claim: list[bool] = []

    async def look_at_the_store(request: EditRequest) -> str:
        (edit,) = (await store.list_edits())[0]
        seen.append(edit)
        now = edit.created_at
        poller_could_claim.append(await store.lease(edit.edit_id, "p1", now + 1, now))
        return "task-1"

    stub = StubProvider(name="runway", on_submit=look_at_the_store)
    settings = make_settings(tmp_path, runway_api_key=KEY)
    service = build_service(store, {"runway": stub}, settings, clock, [], [])
    edit, duplicate = await service.submit(args())
    (during,) = seen
    assert (during.edit_id, during.status, during.provider_task_id) == (edit.edit_id, "queued", None)
    assert during.next_poll_at == START + LEASE  # found by a poller only if this process dies
    assert poller_could_claim == [False]
    stored = await store.get(edit.edit_id)
    assert stored is not None
    assert (stored.provider_task_id, stored.status, stored.next_poll_at) == (
        "task-1",
        "queued",
        START + INTERVAL,
    )
    assert duplicate is False
    assert await store.lease(edit.edit_id, "p1", START + 1, START)  # the lease was given back


class RenewalStore(InMemoryEditStore):
    """An in-memory store that announces every lease taken by a submit after the first."""

    def __init__(self) -> None:
        super().__init__()
        self.submit_leases: list[float] = []
        self.renewed = anyio.Event()

    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool:
        taken = await super().lease(edit_id, owner, until, now)
        if ":submit:" in owner:
            self.submit_leases.append(until)
            if len(self.submit_leases) > 1:
                self.renewed.set()
        return taken


LEASE_SHORT = 0.03


async def test_a_long_upload_keeps_renewing_the_submit_lease(tmp_path: Path, clip: Path) -> None:
    """While a slow upload runs, the lease is renewed so no poller can declare the outcome unknown."""
    store, clock = RenewalStore(), FakeClock()
    poller_could_claim: list[bool] = []

    async def outlast_the_lease(path: Path) -> str:
        clock.now += 10 * LEASE_SHORT  # long past the first lease
        await store.renewed.wait()
        (edit,) = (await store.list_edits())[0]
        now = clock.now
        poller_could_claim.append(await store.lease(edit.edit_id, "p1", now + 1, now))
        return "https://cdn.example.com/uploaded.mp4"

    caps = Capabilities(models=("aleph",), can_upload=True)
    stub = StubProvider(name="krea", capabilities=caps, on_upload=outlast_the_lease)
    settings = make_settings(tmp_path, krea_api_key=KEY)
    service = EditService(store, {"krea": stub}, settings, owner="p1", lease_seconds=LEASE_SHORT, clock=clock)
    with anyio.fail_after(1):
        edit, _ = await service.submit(args("krea", video=str(clip)))
    assert poller_could_claim == [False]
    assert store.submit_leases[0] == START + LEASE_SHORT
    assert store.submit_leases[1] == clock.now + LEASE_SHORT
    assert edit.provider_task_id == "task-1"
    assert stub.requests[0].video == "https://cdn.example.com/uploaded.mp4"


async def test_a_successful_submit_sends_exactly_one_create_and_stores_the_task_id(tmp_path: Path) -> None:
    """One create reaches Runway; the returned and stored edits carry its task id."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        edit, duplicate = await rig.service.submit(args(seed=7, aspect_ratio="16:9"))
        (stored,) = await rig.edits()
    (create,) = rig.fake.creates
    assert create.json == {
        "model": "aleph2",
        "videoUri": VIDEO,
        "promptText": "Make it winter",
        "seed": 7,
        "targetAspectRatio": "16:9",
    }
    assert edit.provider_task_id in rig.fake.tasks
    assert stored.provider_task_id == edit.provider_task_id
    assert (stored.provider, stored.model, stored.video) == ("runway", "aleph2", VIDEO)
    assert stored.options == {"seed": 7, "aspect_ratio": "16:9"}
    assert duplicate is False
    assert rig.submitted == [edit.edit_id]
    assert rig.sleeps == []


# -- refusals before any request ------------------------------------------------------------------

OVERSIZE_DATA_URI = "data:video/mp4;base64," + "A" * (5 * 1024 * 1024 * 4 // 3 + 8)


@pytest.mark.parametrize(
    ("fake_type", "kwargs", "error", "says"),
    [
        (FakeKrea, {"provider": "krea", "prompt": "x" * 1001}, InvalidInput, "at most 1000"),
        (FakeCrun, {"provider": "crun", "aspect_ratio": "16:9"}, InvalidInput, "cannot produce aspect ratio"),
        (FakeCrun, {"provider": "crun", "seed": 3}, InvalidInput, "does not take a seed"),
        (
            FakeCrun,
            {"provider": "crun", "reference_image": "https://cdn.example.com/style.png"},
            InvalidInput,
            "does not take a reference image",
        ),
        (FakeRunway, {"watermark": "ACME"}, InvalidInput, "cannot add a watermark"),
        (FakeRunway, {"model": "gen5"}, InvalidInput, "has no model 'gen5'"),
        (FakeRunway, {"video": "http://cdn.example.com/in.mp4"}, InvalidInput, "must use https"),
        (FakeKie, {"provider": "kie", "video": "data:video/mp4;base64,AAAA"}, InvalidInput, "data: URIs"),
        (FakeRunway, {"video": OVERSIZE_DATA_URI}, InvalidInput, "accepts at most 5242880"),
        (FakeRunway, {"video": "data:video/mp4;base64,not*base64!"}, InvalidInput, "invalid base64"),
        (FakeRunway, {"video": "data:video/mp4,plain-text"}, InvalidInput, "not base64"),
        (FakeRunway, {"prompt": "   \n "}, InvalidInput, "prompt is empty"),
        (FakeRunway, {"provider": "sora"}, InvalidInput, "Unknown provider 'sora'"),
        (FakeRunway, {"provider": "krea"}, NotConfigured, "ALEPH_MCP_KREA_API_KEY"),
        (
            FakeKie,
            {"provider": "kie", "reference_image": "data:image/png;base64,iVBORw0KGgo="},
            InvalidInput,
            "does not accept data: URIs as `reference_image`",
        ),
    ],
    ids=[
        "krea-long-prompt",
        "crun-aspect-ratio",
        "crun-seed",
        "crun-reference",
        "runway-watermark",
        "unknown-model",
        "plain-http",
        "kie-data-uri",
        "runway-oversize-data-uri",
        "invalid-base64",
        "data-uri-not-base64",
        "empty-prompt",
        "unknown-provider",
        "unconfigured-provider",
        "kie-data-uri-reference",
    ],
)
async def test_invalid_arguments_are_refused_before_anything_is_sent_or_stored(
    tmp_path: Path, fake_type: type[FakeAPI], kwargs: dict[str, Any], error: type[AlephError], says: str
) -> None:
    """Each refusal names what to change; the fake sees no request and the store stays empty."""
    async with rig_for(fake_type(), tmp_path) as rig:
        with pytest.raises(error) as caught:
            await rig.service.submit(args(**kwargs))
        assert await rig.edits() == []
    assert says in caught.value.message
    assert rig.fake.requests == []


async def test_a_prompt_counted_in_utf16_units_over_the_limit_is_refused_before_storing(
    tmp_path: Path,
) -> None:
    """600 emoji are 1200 UTF-16 units, over Runway's 1000, though only 600 characters."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        with pytest.raises(InvalidInput, match="1200 characters"):
            await rig.service.submit(args(prompt="🎬" * 600))
        assert await rig.edits() == []
    assert rig.fake.requests == []


def outside_file(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    secret = elsewhere / "secret.mp4"
    secret.write_bytes(b"not yours")
    return secret


def video_arg(case: str, tmp_path: Path, inputs: Path) -> str:
    if case in ("outside", "no-allowed-dirs"):
        return str(outside_file(tmp_path))
    if case == "dotdot":
        outside_file(tmp_path)
        return f"{inputs}/../elsewhere/secret.mp4"
    if case == "symlink":
        link = inputs / "innocent.mp4"
        link.symlink_to(outside_file(tmp_path))
        return str(link)
    if case == "directory":
        (inputs / "folder").mkdir()
        return str(inputs / "folder")
    if case == "fifo":
        os.mkfifo(inputs / "pipe.mp4")
        return str(inputs / "pipe.mp4")
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("no-allowed-dirs", "no directory is allowed"),
        ("outside", "outside the allowed directories"),
        ("dotdot", "outside the allowed directories"),
        ("symlink", "outside the allowed directories"),
        ("directory", "not a regular file"),
        ("fifo", "not a regular file"),
    ],
)
async def test_local_paths_that_are_not_allowed_regular_files_are_refused(
    tmp_path: Path, inputs: Path, case: str, says: str
) -> None:
    """Paths escaping the allowed dirs, directories and FIFOs are refused without opening them."""
    overrides = {"allowed_dirs": ""} if case == "no-allowed-dirs" else {}
    async with rig_for(FakeRunway(), tmp_path, **overrides) as rig:
        with anyio.fail_after(5), pytest.raises(InvalidInput) as caught:
            await rig.service.submit(args(video=video_arg(case, tmp_path, inputs)))
        assert await rig.edits() == []
    assert says in caught.value.message
    assert rig.fake.requests == []


# -- create failures and retries ------------------------------------------------------------------


async def test_a_vendor_400_on_create_fails_the_edit_with_the_vendors_text(tmp_path: Path) -> None:
    """The refusal is recorded on the edit and raised; the create was sent once."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        rig.fake.inject(
            Fault(kind="create", status=400, body={"error": "Validation of body failed: videoUri"})
        )
        with pytest.raises(AlephError) as caught:
            await rig.service.submit(args())
        (edit,) = await rig.edits()
    assert "Validation of body failed: videoUri" in caught.value.message
    assert caught.value.code == "provider_rejected"
    assert (edit.status, edit.error_code) == ("failed", "provider_rejected")
    assert "Validation of body failed: videoUri" in (edit.error_message or "")
    assert (edit.finished_at, edit.next_poll_at) == (START, None)
    assert len(rig.fake.creates) == 1
    assert rig.sleeps == []
    assert rig.submitted == []


@pytest.mark.parametrize(
    "fault",
    [Fault(kind="create", status=500), Fault(kind="create", raise_exc=httpx2.ReadTimeout)],
    ids=["http-500", "read-timeout"],
)
async def test_a_create_that_may_have_arrived_is_never_sent_again(tmp_path: Path, fault: Fault) -> None:
    """A 500 or a read timeout leaves the outcome unknown: recorded as such, exactly one create."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        rig.fake.inject(fault)
        with pytest.raises(AlephError) as caught:
            await rig.service.submit(args())
        (edit,) = await rig.edits()
    assert caught.value.code == "submit_outcome_unknown"
    assert (edit.status, edit.error_code, edit.provider_task_id) == ("failed", "submit_outcome_unknown", None)
    assert "not sent again" in (edit.error_message or "")
    assert len(rig.fake.creates) == 1
    assert rig.sleeps == []


async def test_a_refused_connection_on_create_is_retried_and_one_task_exists(tmp_path: Path) -> None:
    """ConnectError proves nothing was created, so the create is sent again and succeeds."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        rig.fake.inject(Fault(kind="create", raise_exc=httpx2.ConnectError))
        edit, _ = await rig.service.submit(args())
    assert len(rig.fake.creates) == 2
    assert list(rig.fake.tasks) == [edit.provider_task_id]
    assert (edit.status, edit.error_code) == ("queued", None)
    assert rig.sleeps == [1.0]


async def test_a_429_on_create_leaves_the_edit_queued_waiting_for_capacity(tmp_path: Path) -> None:
    """No job was made: the call returns at once with the edit queued, its create kept for a later try."""
    async with rig_for(FakeKrea(), tmp_path) as rig:
        rig.fake.inject(
            Fault(kind="create", status=429, body={"error": "Too many jobs"}, headers={"Retry-After": "2"})
        )
        edit, _ = await rig.service.submit(args("krea"))
        (stored,) = await rig.edits()
    assert edit.edit_id == stored.edit_id and edit.status == "queued"
    assert len(rig.fake.creates) == 1 and rig.sleeps == []
    assert (stored.status, stored.provider_task_id, stored.error_code) == ("queued", None, None)
    assert stored.waiting_for_capacity and stored.create_sent_at is None
    assert "Waiting for krea capacity" in (stored.notes or "")
    assert stored.submit_after is not None and stored.submit_after >= START + 2
    assert stored.next_poll_at == stored.submit_after
    assert (stored.pending_request or {})["video"] == VIDEO


async def test_a_per_model_refusal_happens_before_anything_is_stored_or_sent(tmp_path: Path) -> None:
    """Runway takes references only with gen4_aleph: refused in validation, no edit, no request."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        with pytest.raises(InvalidInput, match="gen4_aleph"):
            await rig.service.submit(args(reference_image="https://cdn.example.com/style.png"))
        assert await rig.edits() == []
    assert rig.fake.requests == []


async def test_an_adapter_refusal_before_sending_is_recorded_not_left_for_the_poller(tmp_path: Path) -> None:
    """A refusal raised inside submit ends the stored edit as failed invalid_input, not unknown."""

    async def refuse(request: EditRequest) -> str:
        raise InvalidInput("This adapter refuses the request.")

    store = InMemoryEditStore()
    refusing = StubProvider(name="runway", on_submit=refuse)
    service = EditService(
        store, {"runway": refusing}, make_settings(tmp_path, runway_api_key=KEY), owner="p1"
    )
    with pytest.raises(InvalidInput, match="refuses"):
        await service.submit(args())
    ((edit,), _) = await store.list_edits()
    assert (edit.status, edit.error_code, edit.next_poll_at) == ("failed", "invalid_input", None)


# -- idempotency ----------------------------------------------------------------------------------


async def test_an_idempotency_key_returns_the_same_edit_without_sending_again(tmp_path: Path) -> None:
    """The second call with the same key and arguments is answered from the store."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        first, first_dup = await rig.service.submit(args(idempotency_key="job-42"))
        requests = len(rig.fake.requests)
        second, second_dup = await rig.service.submit(args(idempotency_key="job-42"))
        assert len(await rig.edits()) == 1
    assert (first_dup, second_dup) == (False, True)
    assert second.edit_id == first.edit_id
    assert second.provider_task_id == first.provider_task_id
    assert len(rig.fake.requests) == requests == 1


async def test_an_idempotency_key_reused_with_other_arguments_is_refused(tmp_path: Path) -> None:
    """A key names one request: different arguments under it are an error, not a silent duplicate."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        first, _ = await rig.service.submit(args(idempotency_key="job-42"))
        with pytest.raises(InvalidInput, match=rf"already used for edit {first.edit_id}.*prompt"):
            await rig.service.submit(args(idempotency_key="job-42", prompt="Make it summer"))
    assert len(rig.fake.creates) == 1


async def test_an_idempotency_key_on_a_failed_submit_returns_that_failure(tmp_path: Path) -> None:
    """A create of unknown outcome is never resent, not even when the caller retries with its key."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        rig.fake.inject(Fault(kind="create", status=502))
        with pytest.raises(AlephError):
            await rig.service.submit(args(idempotency_key="job-7"))
        edit, duplicate = await rig.service.submit(args(idempotency_key="job-7"))
    assert (edit.status, edit.error_code, duplicate) == ("failed", "submit_outcome_unknown", True)
    assert len(rig.fake.creates) == 1


# -- local files ----------------------------------------------------------------------------------


async def test_a_local_file_is_uploaded_to_runway_and_the_create_uses_the_runway_uri(
    tmp_path: Path, clip: Path
) -> None:
    """The clip goes to the presigned bucket; videoUri is the runway:// URI handed out."""
    fake = FakeRunway()
    async with rig_for(fake, tmp_path) as rig:
        edit, _ = await rig.service.submit(args(video=str(clip)))
    (upload,) = fake.uploads
    assert upload["content"] == clip.read_bytes()
    (create,) = fake.creates
    assert create.json["videoUri"].startswith("runway://ephemeral/")
    assert edit.video == str(clip.resolve())


async def test_a_local_file_is_uploaded_to_krea_and_the_create_uses_the_asset_url(
    tmp_path: Path, clip: Path
) -> None:
    """The clip becomes a Krea asset; init_video is that asset's URL."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        await rig.service.submit(args("krea", video=str(clip)))
    (upload,) = fake.uploads
    assert upload["file"].content == clip.read_bytes()
    (create,) = fake.creates
    assert create.json["init_video"].startswith(f"{BASE}/files/assets/")


async def test_a_local_file_is_uploaded_to_kie_and_the_create_uses_the_download_url(
    tmp_path: Path, clip: Path
) -> None:
    """The clip goes to kie's upload host; videoUrl is its downloadUrl."""
    fake = FakeKie()
    async with rig_for(fake, tmp_path) as rig:
        await rig.service.submit(args("kie", video=str(clip)))
    (upload,) = fake.uploads
    assert upload["file"].content == clip.read_bytes()
    (create,) = fake.creates
    assert create.json["videoUrl"] == f"{BASE}/files/aleph-mcp/clip.mp4"


async def test_a_failed_upload_fails_the_edit_and_sends_no_create(tmp_path: Path, clip: Path) -> None:
    """An upload starts no paid job, so its failure is recorded as not created."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="upload", status=503))
        with pytest.raises(AlephError) as caught:
            await rig.service.submit(args("krea", video=str(clip)))
        (edit,) = await rig.edits()
    assert caught.value.code == "provider_unavailable"
    assert (edit.status, edit.error_code) == ("failed", "provider_unavailable")
    assert fake.creates == []


# -- waiting --------------------------------------------------------------------------------------


async def test_wait_for_end_returns_when_the_edit_ends_not_at_its_first_change(tmp_path: Path) -> None:
    """queued -> running wakes the waiter but does not end the wait; succeeded does."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        edit, _ = await rig.service.submit(args())
        reports: list[tuple[float, str]] = []

        async def progress(fraction: float, message: str) -> None:
            reports.append((fraction, message))

        async def move(status: str, progress: float | None) -> None:
            moved = await rig.store.get(edit.edit_id)
            assert moved is not None
            moved.status, moved.progress = status, progress  # type: ignore[assignment]
            moved.updated_at += len(reports) + 1
            await rig.store.save(moved)
            rig.service.changes.publish(moved)

        async def render() -> None:
            await move("running", 0.5)
            while not reports:
                await anyio.lowlevel.checkpoint()
            await move("succeeded", 1.0)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(render)
                seen = await rig.service.wait_for_end(edit.edit_id, 30, progress)
    assert seen.status == "succeeded"
    assert [m for _, m in reports] == ["running, 50%", "succeeded"]
    assert reports[0][0] < reports[1][0] == 1.0


async def test_wait_for_end_returns_after_wait_seconds_when_nothing_changes(tmp_path: Path) -> None:
    """An edit that does not move is returned unchanged once the wait runs out."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        edit, _ = await rig.service.submit(args())
        with anyio.fail_after(1):
            start = anyio.current_time()
            seen = await rig.service.wait_for_end(edit.edit_id, 0.3)
            waited = anyio.current_time() - start
    assert (seen.status, seen.updated_at) == ("queued", edit.updated_at)
    assert 0.3 <= waited < 0.6


async def test_wait_for_end_on_a_finished_edit_returns_at_once(tmp_path: Path) -> None:
    """Nothing more will happen to a failed edit, so there is nothing to wait for."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        rig.fake.inject(Fault(kind="create", status=400, body={"error": "bad"}))
        with pytest.raises(AlephError):
            await rig.service.submit(args())
        (edit,) = await rig.edits()
        with anyio.fail_after(0.1):
            seen = await rig.service.wait_for_end(edit.edit_id, 30)
    assert seen.status == "failed"


# -- cancel ---------------------------------------------------------------------------------------


async def test_cancelling_a_kie_edit_names_the_providers_that_can_cancel(tmp_path: Path) -> None:
    """kie has no cancel API: the error says so, names krea and runway, and sends nothing."""
    async with rig_for(FakeKie(), tmp_path) as rig:
        edit, _ = await rig.service.submit(args("kie"))
        with pytest.raises(CannotCancel) as caught:
            await rig.service.cancel(edit.edit_id)
        stored = await rig.store.get(edit.edit_id)
    assert "kie has no cancel API" in caught.value.message
    assert "krea" in caught.value.message
    assert "runway" in caught.value.message
    assert [r.path for r in rig.fake.requests] == ["/api/v1/aleph/generate"]
    assert stored is not None
    assert stored.status == "queued"


@pytest.mark.parametrize("fake_type", [FakeKrea, FakeRunway])
async def test_cancelling_a_krea_or_runway_edit_deletes_the_task_and_records_it(
    tmp_path: Path, fake_type: type[FakeAPI]
) -> None:
    """One DELETE reaches the vendor and the edit ends as cancelled."""
    fake = fake_type()
    async with rig_for(fake, tmp_path) as rig:
        edit, _ = await rig.service.submit(args(fake.name))
        cancelled = await rig.service.cancel(edit.edit_id)
        stored = await rig.store.get(edit.edit_id)
    (delete,) = fake.calls("cancel")
    assert delete.method == "DELETE"
    assert delete.path.endswith(edit.provider_task_id or "-")
    assert fake.tasks[edit.provider_task_id or ""].cancelled
    assert stored is not None
    for record in (cancelled, stored):
        assert (record.status, record.error_code, record.next_poll_at) == ("cancelled", "cancelled", None)
        assert record.finished_at == START


async def test_cancelling_a_finished_edit_is_refused(tmp_path: Path) -> None:
    """An edit that already ended has nothing to cancel, and no request is sent."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        edit, _ = await rig.service.submit(args())
        stored = await rig.store.get(edit.edit_id)
        assert stored is not None
        stored.status = "succeeded"
        await rig.store.save(stored)
        with pytest.raises(CannotCancel, match="already ended"):
            await rig.service.cancel(edit.edit_id)
    assert rig.fake.calls("cancel") == []
    assert rig.fake.calls("status") == []


async def test_cancelling_an_unknown_edit_raises_edit_not_found(tmp_path: Path) -> None:
    """The error points the agent at list_edits."""
    async with rig_for(FakeRunway(), tmp_path) as rig:
        with pytest.raises(EditNotFound, match="list_edits"):
            await rig.service.cancel("ed_missing")


async def test_cancel_waits_for_this_processs_poller_to_let_go_of_the_edit(tmp_path: Path) -> None:
    """The poller (same owner id) holds the edit: cancel sends nothing until that lease is released."""
    async with rig_for(FakeKrea(), tmp_path) as rig:
        edit, _ = await rig.service.submit(args("krea"))
        assert await rig.store.lease(edit.edit_id, "p1", START + 600, START)
        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rig.service.cancel, edit.edit_id)
                for _ in range(20):
                    await anyio.lowlevel.checkpoint()
                assert rig.fake.calls("cancel") == []
                await rig.store.release(edit.edit_id, "p1")
        stored = await rig.store.get(edit.edit_id)
    assert len(rig.fake.calls("cancel")) == 1
    assert stored is not None
    assert stored.status == "cancelled"


def test_oversize_data_uri_fixture_really_is_over_five_megabytes() -> None:
    """Guard for the refusal table: the payload decodes to more than Runway's 5 MB."""
    payload = OVERSIZE_DATA_URI.split(",", 1)[1]
    assert len(payload) * 3 // 4 > 5 * 1024 * 1024
    assert base64.b64decode(payload[:4096], validate=True)
