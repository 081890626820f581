"""The poller against fake vendor APIs: status passes, archiving, failures, deadlines, leases, limits."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import av
import httpx2
import pytest

from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import MAX_EXPIRED_RETRIES, Poller
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.models import Edit, EditRequest, RemoteStatus
from aleph_mcp.providers.base import Capabilities, Provider
from aleph_mcp.store import EditStore, InMemoryEditStore
from tests.fakes.base import FAKE_VIDEO, FakeAPI, Fault
from tests.fakes.clock import FakeClock
from tests.fakes.kie import FakeKie
from tests.fakes.krea import FakeKrea
from tests.fakes.runway import FakeRunway
from tests.fakes.stub import StubProvider
from tests.fakes.vendors import adapter_for
from tests.media import make_clip
from tests.test_store import open_kind

KEY = "test-key-0123456789"
BASE = "http://fake.invalid"
POLICY = PollPolicy(interval=1.0, max_interval=8.0, edit_timeout=3600.0, concurrency=4, lease_seconds=60.0)


def undecodable(mp4: bytes) -> bytes:
    """The same container with its frames zeroed: it opens as a video, but no frame decodes."""
    at = mp4.index(b"mdat")
    size = struct.unpack(">I", mp4[at - 4 : at])[0]
    return mp4[: at + 4] + bytes(size - 8) + mp4[at - 4 + size :]


@dataclass
class Rig:
    fake: FakeAPI
    store: EditStore
    archive: LocalArchive
    clock: FakeClock
    poller: Poller
    provider: Provider
    changes: list[tuple[str, str, float | None]] = field(default_factory=list)

    async def submit(self, prompt: str = "Make it winter") -> Edit:
        """An edit as the service leaves it: created at the fake, stored with its task id, due now."""
        request = EditRequest(prompt=prompt, video="https://cdn.example.com/in.mp4", model="aleph")
        if self.provider.name == "runway":
            request = EditRequest(prompt=prompt, video=request.video, model="aleph2")
        task_id = await self.provider.submit(request)
        edit = Edit(
            edit_id=f"ed_{len(self.fake.tasks):04d}",
            provider=self.provider.name,
            model=request.model,
            prompt=prompt,
            video=request.video,
            provider_task_id=task_id,
            created_at=self.clock(),
            updated_at=self.clock(),
            next_poll_at=self.clock(),
        )
        await self.store.add(edit)
        return edit

    async def step(self, edit_id: str) -> Edit:
        """Move the clock to when the edit is due, run one pass, return the stored edit."""
        edit = await self.get(edit_id)
        if edit.next_poll_at is not None:
            self.clock.now = max(self.clock.now, edit.next_poll_at)
        with anyio.fail_after(10):
            await self.poller.poll_once()
        return await self.get(edit_id)

    async def get(self, edit_id: str) -> Edit:
        edit = await self.store.get(edit_id)
        assert edit is not None
        return edit

    def files(self) -> set[str]:
        return {p.name for p in self.archive.root.iterdir()}


def make_rig(
    fake: FakeAPI,
    client: httpx2.AsyncClient,
    tmp_path: Path,
    *,
    policy: PollPolicy = POLICY,
    store: EditStore | None = None,
    providers: dict[str, Provider] | None = None,
    clock: FakeClock | None = None,
) -> Rig:
    clock = clock or FakeClock()
    the_store = store or InMemoryEditStore()
    archive = LocalArchive(tmp_path / "archive")
    provider = adapter_for(fake, client, api_key=KEY, base_url=BASE)
    changes: list[tuple[str, str, float | None]] = []

    async def on_change(edit: Edit) -> None:
        changes.append((edit.edit_id, edit.status, edit.progress))

    poller = Poller(
        the_store,
        {provider.name: provider} if providers is None else providers,
        archive,
        client,
        owner="p1",
        policy=policy,
        on_change=on_change,
        clock=clock,
        fetch=FetchPolicy.trusting([BASE]),
    )
    return Rig(fake, the_store, archive, clock, poller, provider, changes)


@pytest.fixture
async def runway(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        yield make_rig(fake, client, tmp_path)


# -- the happy path -------------------------------------------------------------------------------


def assert_jpeg(path: Path, size: tuple[int, int]) -> None:
    """A real JPEG of the given size: thumbnails are normalised to one small format."""
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    with av.open(str(path)) as image:
        frame = next(image.decode(video=0))
    assert (frame.width, frame.height) == size


async def test_an_edit_goes_queued_running_succeeded_and_its_video_is_archived(runway: Rig) -> None:
    """Three passes follow the vendor's steps; the video lands in the archive byte for byte."""
    edit = await runway.submit()
    seen = [(e.status, e.progress) for e in [await runway.step(edit.edit_id) for _ in range(3)]]
    assert seen == [("queued", None), ("running", 0.42), ("succeeded", 1.0)]
    done = await runway.get(edit.edit_id)
    assert done.local_path == str(runway.archive.video_path(edit.edit_id))
    assert Path(done.local_path).read_bytes() == runway.fake.video_bytes == FAKE_VIDEO
    assert done.finished_at == runway.clock.now
    assert done.next_poll_at is None
    assert done.error_code is None
    assert runway.files() == {f"{edit.edit_id}.mp4", f"{edit.edit_id}.thumb.jpg"}  # no temp files


async def test_the_runway_preview_url_becomes_the_archived_thumbnail(runway: Rig) -> None:
    """previewUrls[0] is downloaded as the thumbnail rather than a frame being extracted."""
    runway.fake.steps = ("succeeded",)
    edit = await runway.submit()
    done = await runway.step(edit.edit_id)
    assert done.thumbnail_url is not None
    assert done.thumbnail_url.endswith(".png")
    assert done.thumbnail_path is not None
    assert_jpeg(Path(done.thumbnail_path), (8, 8))


async def test_the_kie_result_image_url_becomes_the_archived_thumbnail(tmp_path: Path) -> None:
    """kie's resultImageUrl is fetched as the thumbnail next to the archived video."""
    fake = FakeKie(steps=("running", "succeeded"))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        assert (await rig.step(edit.edit_id)).status == "running"
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded"
    assert done.thumbnail_path == str(rig.archive.thumbnail_path(edit.edit_id, ".jpg"))
    assert_jpeg(Path(done.thumbnail_path), (8, 8))
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO


async def test_without_a_vendor_thumbnail_a_jpeg_poster_is_taken_from_the_video(tmp_path: Path) -> None:
    """Krea gives no preview: a JPEG still is extracted from the real archived MP4."""
    clip = make_clip(tmp_path / "result.mp4")
    fake = FakeKrea(steps=("succeeded",), video_bytes=clip.read_bytes())
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded"
    assert done.thumbnail_url is None
    assert done.thumbnail_path == str(rig.archive.thumbnail_path(edit.edit_id, ".jpg"))
    assert_jpeg(Path(done.thumbnail_path), (160, 96))
    assert rig.files() == {f"{edit.edit_id}.mp4", f"{edit.edit_id}.thumb.jpg"}


async def test_an_undecodable_video_still_succeeds_without_a_thumbnail(tmp_path: Path) -> None:
    """A poster that cannot be made never holds back a finished video."""
    fake = FakeKrea(steps=("succeeded",), video_bytes=undecodable(FAKE_VIDEO))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded"
    assert done.thumbnail_path is None
    assert Path(done.local_path or "").read_bytes() == fake.video_bytes


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_an_edit_resumes_in_a_new_poller_over_the_same_store(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """State lives in the store (a file, or a database): a restarted process, or another replica, picks
    the edit up where the last one left it."""
    fake = FakeRunway()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        first = make_rig(fake, client, tmp_path, store=await open_kind(kind, tmp_path, request))
        edit = await first.submit()
        assert (await first.step(edit.edit_id)).status == "queued"
        await first.store.close()
        second = make_rig(
            fake, client, tmp_path, store=await open_kind(kind, tmp_path, request), clock=first.clock
        )
        assert (await second.step(edit.edit_id)).status == "running"
        done = await second.step(edit.edit_id)
        await second.store.close()
    assert done.status == "succeeded"
    assert done.polls == 3
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO


# -- failures -------------------------------------------------------------------------------------


async def test_a_vendor_failure_fails_the_edit_with_the_vendors_message_and_code(runway: Rig) -> None:
    """Runway's failure text and failureCode become the edit's error."""
    runway.fake.steps = ("running", "failed")
    edit = await runway.submit()
    await runway.step(edit.edit_id)
    failed = await runway.step(edit.edit_id)
    assert failed.status == "failed"
    assert failed.error_code == "SAFETY.INPUT.TEXT"
    assert failed.error_message == runway.fake.failure_message
    assert failed.finished_at == runway.clock.now
    assert failed.local_path is None
    assert runway.files() == set()


@pytest.mark.parametrize(
    "fault",
    [Fault(kind="status", status=500), Fault(kind="status", raise_exc=httpx2.ReadTimeout)],
    ids=["http-500", "read-timeout"],
)
async def test_a_failed_status_read_leaves_the_edit_unfinished_and_backs_off(
    runway: Rig, fault: Fault
) -> None:
    """A 500 or a timeout counts a failure and pushes the next read out; the edit is untouched."""
    edit = await runway.submit()
    runway.fake.inject(fault)
    after = await runway.step(edit.edit_id)
    assert after.status == "queued"
    assert after.poll_failures == 1
    assert after.next_poll_at is not None
    assert after.next_poll_at >= runway.clock.now + POLICY.interval
    assert after.error_code is None
    assert runway.changes == []
    recovered = await runway.step(edit.edit_id)
    assert (recovered.status, recovered.poll_failures) == ("queued", 0)


async def test_a_429_with_retry_after_pushes_the_next_read_past_it(runway: Rig) -> None:
    """Retry-After: 30 is honoured even though it is longer than max_interval."""
    edit = await runway.submit()
    runway.fake.inject(
        Fault(kind="status", status=429, body={"error": "slow down"}, headers={"Retry-After": "30"})
    )
    after = await runway.step(edit.edit_id)
    assert after.status == "queued"
    assert after.next_poll_at is not None
    assert after.next_poll_at >= runway.clock.now + 30
    assert len(runway.fake.calls("status")) == 1


async def test_status_read_failures_never_fail_the_edit_before_the_deadline(runway: Rig) -> None:
    """Twelve failed reads in a row only delay the edit; it still succeeds afterwards."""
    edit = await runway.submit()
    for _ in range(12):
        runway.fake.inject(Fault(kind="status", status=503))
    failures = [(await runway.step(edit.edit_id)).poll_failures for _ in range(12)]
    assert failures == list(range(1, 13))
    assert (await runway.get(edit.edit_id)).status == "queued"
    assert runway.clock.now - edit.created_at < POLICY.edit_timeout
    statuses = [(await runway.step(edit.edit_id)).status for _ in range(3)]
    assert statuses == ["queued", "running", "succeeded"]


async def test_an_edit_past_its_deadline_fails_with_timeout(runway: Rig) -> None:
    """Still running after edit_timeout: failed with code timeout and the task id in the message."""
    runway.fake.steps = ("running",)
    edit = await runway.submit()
    assert (await runway.step(edit.edit_id)).status == "running"
    runway.clock.advance(POLICY.edit_timeout + 1)
    failed = await runway.step(edit.edit_id)
    assert failed.status == "failed"
    assert failed.error_code == "timeout"
    assert edit.provider_task_id is not None
    assert edit.provider_task_id in (failed.error_message or "")
    assert failed.next_poll_at is None


async def test_an_edit_that_finished_by_its_deadline_is_archived_rather_than_timed_out(runway: Rig) -> None:
    """The last look before the deadline verdict finds the result, so the paid video is kept."""
    runway.fake.steps = ("running", "succeeded")
    edit = await runway.submit()
    await runway.step(edit.edit_id)
    runway.clock.advance(POLICY.edit_timeout + 1)
    done = await runway.step(edit.edit_id)
    assert (done.status, done.error_code) == ("succeeded", None)
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO


async def test_an_edit_without_a_task_id_whose_lease_expired_fails_as_submit_outcome_unknown(
    runway: Rig,
) -> None:
    """Its submitter died mid-create: the poller records the unknown outcome and never sends a create."""
    now = runway.clock.now  # create_sent_at: the create had left when the submitter died
    edit = Edit(
        edit_id="ed_orphan",
        provider="runway",
        model="aleph2",
        prompt="Make it winter",
        video="https://cdn.example.com/in.mp4",
        created_at=now,
        updated_at=now,
        next_poll_at=now + 60,
        create_sent_at=now,
    )
    await runway.store.add(edit)
    assert await runway.store.lease("ed_orphan", "dead-process", now + 60, now)
    assert await runway.poller.poll_once() == 0
    runway.clock.advance(61)
    failed = await runway.step("ed_orphan")
    assert failed.status == "failed"
    assert failed.error_code == "submit_outcome_unknown"
    assert "not sent again" in (failed.error_message or "")
    assert runway.fake.requests == []


async def test_an_edit_leased_by_another_process_is_not_polled(runway: Rig) -> None:
    """A live lease held by p2 keeps this poller's hands off; once it lapses, p1 polls it."""
    edit = await runway.submit()
    now = runway.clock.now
    assert await runway.store.lease(edit.edit_id, "p2", now + 30, now)
    assert await runway.poller.poll_once() == 0
    runway.clock.advance(29)
    assert await runway.poller.poll_once() == 0
    assert runway.fake.calls("status") == []
    runway.clock.advance(2)
    assert (await runway.step(edit.edit_id)).polls == 1
    assert len(runway.fake.calls("status")) == 1


async def test_on_change_fires_only_for_visible_changes(runway: Rig) -> None:
    """Repeated identical reads move the schedule but neither notify nor bump updated_at."""
    runway.fake.steps = ("queued", "queued", "running", "running", "succeeded")
    edit = await runway.submit()
    updated = []
    for _ in range(5):
        runway.clock.advance(0.5)
        updated.append((await runway.step(edit.edit_id)).updated_at)
    assert runway.changes == [(edit.edit_id, "running", 0.42), (edit.edit_id, "succeeded", 1.0)]
    assert updated[0] == updated[1] == edit.updated_at
    assert updated[2] == updated[3] < updated[4]


# -- downloads ------------------------------------------------------------------------------------


async def test_an_expired_output_url_is_read_again_for_a_fresh_one(runway: Rig) -> None:
    """A 403 on the result file clears the URL; the next pass re-reads the task and downloads."""
    runway.fake.steps = ("succeeded",)
    edit = await runway.submit()
    runway.fake.inject(Fault(kind="file", status=403))
    first = await runway.step(edit.edit_id)
    assert (first.status, first.output_url, first.local_path) == ("running", None, None)
    assert first.next_poll_at == runway.clock.now
    done = await runway.step(edit.edit_id)
    assert done.status == "succeeded"
    assert len(runway.fake.calls("status")) == 2
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO


async def test_an_output_url_that_keeps_expiring_fails_the_edit_as_output_expired(runway: Rig) -> None:
    """After every fresh URL has expired too, the edit fails and the archive stays empty."""
    assert isinstance(runway.fake, FakeRunway)
    runway.fake.steps = ("succeeded",)
    runway.fake.previews = False
    edit = await runway.submit()
    for _ in range(MAX_EXPIRED_RETRIES + 1):
        runway.fake.inject(Fault(kind="file", status=403))
    statuses = [(await runway.step(edit.edit_id)).status for _ in range(MAX_EXPIRED_RETRIES + 1)]
    assert statuses == ["running"] * MAX_EXPIRED_RETRIES + ["failed"]
    failed = await runway.get(edit.edit_id)
    assert failed.error_code == "output_expired"
    assert failed.local_path is None
    assert len(runway.fake.calls("status")) == MAX_EXPIRED_RETRIES + 1
    assert len(runway.fake.calls("file")) == MAX_EXPIRED_RETRIES + 1
    assert runway.files() == set()


async def test_a_failed_download_leaves_no_file_in_the_archive(runway: Rig) -> None:
    """A transport error on the result file leaves nothing behind and is retried later."""
    runway.fake.steps = ("succeeded",)
    edit = await runway.submit()
    runway.fake.inject(Fault(kind="file", raise_exc=httpx2.ReadError))
    after = await runway.step(edit.edit_id)
    assert (after.status, after.local_path, after.poll_failures) == ("running", None, 1)
    assert after.output_url is not None
    assert runway.files() == set()
    done = await runway.step(edit.edit_id)
    assert done.status == "succeeded"
    assert len(runway.fake.calls("status")) == 1  # the URL in hand was used, no new read


class BreaksMidway(httpx2.AsyncByteStream):
    """A response body that sends some bytes, then loses the connection."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield FAKE_VIDEO[:100]
        raise httpx2.ReadError("connection reset mid-body")


async def test_a_download_cut_off_midway_leaves_no_partial_file(tmp_path: Path) -> None:
    """Bytes already written to the temp file are removed when the stream breaks."""
    fake = FakeRunway(steps=("succeeded",))

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith(".mp4"):
            return httpx2.Response(200, stream=BreaksMidway())
        return fake(request)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        after = await rig.step(edit.edit_id)
    assert (after.status, after.local_path, after.poll_failures) == ("running", None, 1)
    assert rig.files() == set()


# -- scheduling -----------------------------------------------------------------------------------


@dataclass
class Overlap:
    """A poll step that records how many reads are in flight at once."""

    in_flight: int = 0
    peak: int = 0
    gate: anyio.Event = field(default_factory=anyio.Event)
    opens_at: int = 2
    error: Exception | None = None

    async def poll(self, task_id: str) -> RemoteStatus:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.in_flight >= self.opens_at:
                self.gate.set()
            await self.gate.wait()
            for _ in range(5):  # give every other task the chance to start a read too
                await anyio.lowlevel.checkpoint()
            if self.error is not None:
                raise self.error
            return RemoteStatus("running", progress=0.5)
        finally:
            self.in_flight -= 1


def counting(overlap: Overlap) -> StubProvider:
    """A provider named stub (model m) whose polls go through `overlap`."""
    return StubProvider(name="stub", capabilities=Capabilities(models=("m",)), on_poll=overlap.poll)


def stub_edit(n: int, now: float) -> Edit:
    return Edit(
        edit_id=f"ed_{n}",
        provider="stub",
        model="m",
        prompt="p",
        video="https://cdn.example.com/in.mp4",
        provider_task_id=f"task-{n}",
        created_at=now,
        updated_at=now,
        next_poll_at=now,
    )


def stub_poller(
    store: EditStore, providers: dict[str, Provider], tmp_path: Path, clock: FakeClock, **policy: Any
) -> Poller:
    return Poller(
        store,
        providers,
        LocalArchive(tmp_path / "archive"),
        httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(599))),
        owner="p1",
        policy=PollPolicy(**{"interval": 1.0, "max_interval": 8.0, **policy}),
        clock=clock,
    )


async def test_the_poller_never_reads_more_edits_at_once_than_its_concurrency_limit(tmp_path: Path) -> None:
    """Seven due edits with concurrency 2: all are read in one pass, never more than two at a time."""
    clock, store, overlap = FakeClock(), InMemoryEditStore(), Overlap()
    stub = counting(overlap)
    for n in range(7):
        await store.add(stub_edit(n, clock.now))
    poller = stub_poller(store, {"stub": stub}, tmp_path, clock, concurrency=2)
    with anyio.fail_after(5):
        assert await poller.poll_once() == 7
    assert overlap.peak == 2
    assert sorted(stub.polls) == [f"task-{n}" for n in range(7)]
    edits, _ = await store.list_edits()
    assert {(e.status, e.progress) for e in edits} == {("running", 0.5)}


async def test_a_poller_stopped_mid_read_gives_its_edits_back_at_once(tmp_path: Path) -> None:
    """A shutdown while reads hang: every edit it held (reading or drawn ahead) is free for the next
    process now, not when the lease lapses; and nothing of the unfinished reads was saved."""
    clock, store, overlap = FakeClock(), InMemoryEditStore(), Overlap(opens_at=99)
    for n in range(5):
        await store.add(stub_edit(n, clock.now))
    poller = stub_poller(store, {"stub": counting(overlap)}, tmp_path, clock, concurrency=2)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run)
            while overlap.in_flight < 2:
                await anyio.sleep(0.01)
            free_while_reading = len(await store.due_for_poll(clock.now, 10))
            tg.cancel_scope.cancel()
    assert free_while_reading == 1  # two being read, two drawn ahead of them
    assert len(await store.due_for_poll(clock.now, 10)) == 5
    for n in range(5):  # another process may take each one now
        assert await store.lease(f"ed_{n}", "p2", clock.now + 60, clock.now)
    edits, _ = await store.list_edits()
    assert [(e.polls, e.status) for e in edits] == [(0, "queued")] * 5


async def test_an_unexpected_adapter_error_backs_off_instead_of_reading_every_pass(tmp_path: Path) -> None:
    """A bug-shaped exception counts as a failed read: the edit is rescheduled, not hammered."""
    clock, store = FakeClock(), InMemoryEditStore()
    stub = counting(Overlap(opens_at=1, error=KeyError("status")))
    await store.add(stub_edit(1, clock.now))
    poller = stub_poller(store, {"stub": stub}, tmp_path, clock)
    with anyio.fail_after(5):
        await poller.poll_once()
        assert await poller.poll_once() == 0  # not due again at once
    edit = await store.get("ed_1")
    assert edit is not None
    assert (edit.status, edit.poll_failures) == ("queued", 1)
    assert edit.next_poll_at is not None
    assert edit.next_poll_at >= clock.now + 1.0


async def test_an_edit_whose_provider_is_not_configured_here_is_left_for_another_process(
    tmp_path: Path,
) -> None:
    """Another server process on the same data dir may hold the key: the edit is skipped, not failed."""
    clock, store = FakeClock(), InMemoryEditStore()
    await store.add(stub_edit(1, clock.now))
    poller = stub_poller(store, {}, tmp_path, clock, edit_timeout=POLICY.edit_timeout)
    await poller.poll_once()
    edit = await store.get("ed_1")
    assert edit is not None
    assert (edit.status, edit.error_code, edit.next_poll_at) == (
        "queued",
        None,
        clock.now + POLICY.max_interval,
    )
    clock.advance(POLICY.edit_timeout + 1)
    await poller.poll_once()
    edit = await store.get("ed_1")
    assert edit is not None
    assert (edit.status, edit.error_code) == ("failed", "timeout")
    assert "no stub key" in (edit.error_message or "")


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


def test_next_delay_grows_with_each_read_and_caps_at_max_interval() -> None:
    """Without jitter the waits rise from interval to max_interval and stay there."""
    policy = PollPolicy(interval=2.0, max_interval=30.0, jitter=0.2)
    delays = [policy.next_delay(n, rng=fixed(0.5)) for n in range(15)]
    assert delays[0] == 2.0
    assert delays == sorted(delays)
    assert delays[1] == pytest.approx(3.0)
    assert delays[-1] == 30.0
    assert max(delays) == 30.0


def test_jitter_never_takes_next_delay_outside_interval_and_max_interval() -> None:
    """The floor (a provider's minimum polling gap) and the cap hold at both jitter extremes."""
    policy = PollPolicy(interval=5.0, max_interval=60.0, jitter=0.2)
    assert policy.next_delay(0, rng=fixed(0.0)) == 5.0
    assert policy.next_delay(50, rng=fixed(1.0)) == 60.0
    assert policy.next_delay(3, rng=fixed(1.0)) == pytest.approx(5.0 * 1.5**3 * 1.2)


def test_backoff_grows_with_failures_and_caps_at_max_interval() -> None:
    """Exponential after each failed read, never beyond max_interval without a Retry-After."""
    policy = PollPolicy(interval=1.0, max_interval=20.0)
    delays = [policy.backoff(n, None, rng=fixed(0.5)) for n in range(1, 10)]
    assert delays[:4] == [2.0, 4.0, 8.0, 16.0]
    assert delays[4:] == [20.0] * 5
    assert policy.backoff(30, None, rng=fixed(1.0)) == 20.0


def test_backoff_honours_retry_after_even_beyond_max_interval() -> None:
    """Retry-After wins when it asks for longer; a shorter one does not shorten the backoff."""
    policy = PollPolicy(interval=1.0, max_interval=20.0)
    assert policy.backoff(1, 90.0, rng=fixed(0.0)) == 90.0
    assert policy.backoff(3, 0.5, rng=fixed(0.5)) == 8.0
