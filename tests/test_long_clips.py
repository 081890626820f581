"""A clip longer than the model's window, edited whole: windows sent as child edits, stitched back together.

End to end through the MCP client: the offline `local` provider renders the windows for real; the loopback
fakes of hosted providers fail a chosen window, hold jobs running for a cancel, and count creates.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client

from aleph_mcp.edits import long_clips
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.media import cutting
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FakeAPI, Fault
from .fakes.clock import FakeClock
from .fakes.kie import FakeKie
from .fakes.krea import FakeKrea
from .media import CHIRP_BASE, CHIRP_SLOPE, audio_samples, indices, make_counter_clip, pitch_at, video_times
from .results import text_of

FPS = 12  # make_counter_clip's
BASE = "http://fake.invalid"


async def wait_until_ended(client: Client, edit_id: str, seconds: float = 60) -> dict[str, Any]:
    with anyio.fail_after(seconds):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 2})
            record = result.structured_content
            assert isinstance(record, dict), record
            if record["status"] in ("succeeded", "failed", "cancelled"):
                return record


async def edit_whole(client: Client, clip: Path, **more: Any) -> dict[str, Any]:
    arguments = {"prompt": "make it black and white", "video": str(clip), "whole_clip": True, **more}
    result = await client.call_tool("edit_video", arguments)
    assert not result.is_error, text_of(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


@asynccontextmanager
async def served_local(tmp_path: Path, **settings: Any) -> AsyncIterator[Client]:
    server = create_server(make_settings(tmp_path, **settings))
    async with Client(server) as client:
        yield client


@asynccontextmanager
async def served_fake(tmp_path: Path, fake: FakeAPI, **settings: Any) -> AsyncIterator[Client]:
    """An in-process client against a server whose one provider is a hosted fake (kie or krea)."""
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider: Provider
        if isinstance(fake, FakeKie):
            provider = KieProvider(http, api_key=TEST_KEY, base_url=BASE, upload_base_url=BASE)
        else:
            provider = KreaProvider(http, api_key=TEST_KEY, base_url=BASE)
        keyed = {f"{fake.name}_api_key": TEST_KEY, f"{fake.name}_base_url": BASE}
        config = make_settings(tmp_path, default_provider=fake.name, **keyed, **settings)
        server = create_server(config, providers={fake.name: provider}, store=InMemoryEditStore(), http=http)
        async with Client(server) as client:
            yield client


async def test_a_fourteen_second_clip_is_edited_whole_as_three_windows_and_stitched(
    tmp_path: Path, inputs: Path
) -> None:
    """Three local windows (0-5, 4.5-9.5, 9-14 s) stitched: every frame once, in order, with the tone."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    async with served_local(tmp_path) as client:
        started = await client.call_tool(
            "edit_video", {"prompt": "make it black and white", "video": str(clip), "whole_clip": True}
        )
        job = started.structured_content
        assert isinstance(job, dict) and job["status"] in ("queued", "running")
        ids = ", ".join(w["edit_id"] for w in job["windows"])
        assert f"(whole clip: 0 of 3 windows done, edits {ids})" in text_of(started)
        spans = [(w["start_seconds"], w["end_seconds"]) for w in job["windows"]]
        assert spans == [(0, 5), (4.5, 9.5), (9, 14)]
        done = await wait_until_ended(client, job["edit_id"])
        listed = (await client.call_tool("list_edits", {})).structured_content
        resource = (await client.read_resource(f"aleph://edits/{job['edit_id']}")).contents[0]
        video = (await client.read_resource(done["video_uri"])).contents[0]
    assert done["status"] == "succeeded", done
    assert isinstance(resource, types.TextResourceContents)
    assert [w["edit_id"] for w in json.loads(resource.text)["windows"]] == [
        w["edit_id"] for w in done["windows"]
    ]
    assert isinstance(video, types.BlobResourceContents) and video.mime_type == "video/mp4"
    assert done["notes"].startswith("3 windows stitched")
    assert [w["status"] for w in done["windows"]] == ["succeeded"] * 3
    assert done["video_uri"] == f"aleph://edits/{job['edit_id']}/video" and done["thumbnail_uri"]
    assert isinstance(listed, dict)
    children = [
        e for e in listed["edits"] if e["windows"] and e["windows"][0].get("part_of") == job["edit_id"]
    ]
    assert sorted(e["edit_id"] for e in children) == sorted(w["edit_id"] for w in done["windows"])
    assert [
        e["windows"][0]["start_seconds"] for e in sorted(children, key=lambda e: e["windows"][0]["index"])
    ] == [
        0,
        4.5,
        9,
    ]
    stitched = Path(done["local_path"])
    assert indices(stitched) == list(range(14 * FPS))  # no frame repeated or lost at either seam
    times = video_times(stitched)
    assert {round(b - a, 4) for a, b in itertools.pairwise(times)} == {round(1 / FPS, 4)} and times[0] == 0
    samples, rate = audio_samples(stitched)
    assert abs(len(samples) / rate - 14) < 0.1  # the original's sound, all of it, across the seams too
    for at in (1.0, 4.65, 9.15, 12.0):
        assert abs(pitch_at(samples, rate, at) - (CHIRP_BASE + CHIRP_SLOPE * (at + 0.1))) < 15, at


async def test_past_the_window_limit_the_refusal_says_so_and_nothing_is_sent(
    tmp_path: Path, inputs: Path
) -> None:
    """ALEPH_MCP_MAX_WINDOWS=2: a clip needing 3 windows is refused naming both, with the way out."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    async with served_local(tmp_path, max_windows=2) as client:
        result = await client.call_tool(
            "edit_video", {"prompt": "make it black and white", "video": str(clip), "whole_clip": True}
        )
        listed = (await client.call_tool("list_edits", {})).structured_content
    message = text_of(result)
    assert result.is_error
    assert "needs 3 windows" in message and "at most 2" in message and "ALEPH_MCP_MAX_WINDOWS" in message
    assert "Trim it to at most 9.5 s" in message and "Nothing was sent" in message
    assert isinstance(listed, dict) and listed["edits"] == []
    assert not any((tmp_path / "data" / "local-jobs").glob("local-*"))


async def test_the_quote_budget_and_confirmation_cover_every_window(tmp_path: Path, inputs: Path) -> None:
    """At $0.10/s a 5 s window costs $0.50: the whole 14 s clip is quoted $1.50, and so gated."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    prices: dict[str, Any] = {"prices": {"kie": {"usd": 0.1, "per": "second"}}, "allowed_dirs": str(inputs)}
    async with served_fake(tmp_path / "a", FakeKie(TEST_KEY), **prices) as client:
        preview = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": str(clip), "whole_clip": True, "dry_run": True}
        )
        single = await client.call_tool("edit_video", {"prompt": "snow", "video": str(clip), "dry_run": True})
    quoted = preview.structured_content
    assert isinstance(quoted, dict), text_of(preview)
    assert isinstance(single.structured_content, dict), text_of(single)
    assert quoted["estimated_cost_usd"] == 1.5 and single.structured_content["estimated_cost_usd"] == 0.5
    assert quoted["cost_basis"] == "3 windows × 5 s × $0.10/s; your price"
    fake = FakeKie(TEST_KEY)
    async with served_fake(tmp_path / "b", fake, **prices, budget_usd=1.0) as client:
        over = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": str(clip), "whole_clip": True}
        )
    assert over.is_error and "$1.50" in text_of(over) and fake.creates == []
    async with served_fake(tmp_path / "c", fake, **prices, budget_edits=2) as client:
        dry = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": str(clip), "whole_clip": True, "dry_run": True}
        )
        over = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": str(clip), "whole_clip": True}
        )
    assert isinstance(dry.structured_content, dict)
    assert dry.structured_content["dry_run"]["budget"].startswith("A real call would be refused")
    assert over.is_error and "ALEPH_MCP_BUDGET_EDITS allows 2" in text_of(over) and fake.creates == []
    async with served_fake(tmp_path / "d", fake, **prices, confirm_above_usd=1.0) as client:
        ask = await client.call_tool("edit_video", {"prompt": "snow", "video": str(clip), "whole_clip": True})
    assert ask.is_error and "confirmation" in text_of(ask) and "$1.50" in text_of(ask)
    assert fake.creates == [] and fake.uploads == []


async def test_a_failed_window_fails_the_job_and_a_rerun_sends_only_that_window(
    tmp_path: Path, inputs: Path
) -> None:
    """kie fails window 2's render: the job fails naming it; the same call again makes exactly one create."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKie(TEST_KEY, video_bytes=make_counter_clip(tmp_path / "part.mp4", seconds=5).read_bytes())
    creates = itertools.count()
    fake.steps_for = lambda body: ("running", "failed") if next(creates) == 1 else ("running", "succeeded")
    async with served_fake(tmp_path, fake) as client:
        first = await edit_whole(client, clip)
        failed = await wait_until_ended(client, first["edit_id"])
        assert len(fake.creates) == 3
        window = failed["windows"][1]
        assert failed["status"] == "failed" and failed["error"]["code"] == "window_failed"
        assert f"window 2 of 3 (4.5-9.5 s, edit {window['edit_id']}) failed" in failed["error"]["message"]
        assert "only the missing windows" in failed["error"]["message"]
        kept = [await wait_until_ended(client, failed["windows"][i]["edit_id"]) for i in (0, 2)]
        assert [k["status"] for k in kept] == ["succeeded", "succeeded"]  # finished windows stay available
        second = await edit_whole(client, clip)
        assert second["edit_id"] != first["edit_id"]
        done = await wait_until_ended(client, second["edit_id"])
    assert len(fake.creates) == 4  # only the missing window went out again
    assert done["status"] == "succeeded", done
    reused = [w["edit_id"] for w in done["windows"]]
    assert reused[0] == failed["windows"][0]["edit_id"] and reused[2] == failed["windows"][2]["edit_id"]
    assert reused[1] != window["edit_id"]
    seeds = {c.body["seed"] for c in fake.creates}
    assert len(seeds) == 1 and None not in seeds  # one seed for every window, the re-run's too
    assert len(indices(Path(done["local_path"]))) == 14 * FPS


async def test_cancelling_a_whole_clip_job_cancels_every_window(tmp_path: Path, inputs: Path) -> None:
    """Krea jobs that never end: cancel_edit on the job cancels all three at Krea, then the job."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    async with served_fake(tmp_path, fake) as client:
        job = await edit_whole(client, clip)
        result = await client.call_tool("cancel_edit", {"edit_id": job["edit_id"]})
        record = result.structured_content
        assert isinstance(record, dict)
        windows = [
            (await client.call_tool("get_edit_status", {"edit_id": w["edit_id"]})).structured_content
            for w in job["windows"]
        ]
        again = await client.call_tool("cancel_edit", {"edit_id": job["edit_id"]})
    assert record["status"] == "cancelled"
    assert [w["status"] for w in windows if isinstance(w, dict)] == ["cancelled"] * 3
    assert len(fake.calls("cancel")) == 3 and len(fake.creates) == 3
    assert again.is_error and "already ended" in text_of(again)


async def test_a_job_resumes_from_the_store_after_a_restart(tmp_path: Path, inputs: Path) -> None:
    """The server stops right after sending the windows; the next one, on the same data dir, stitches."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    short_lease = {"request_timeout": 1.0}  # a stop mid-poll leaves its lease to lapse: 4 s, not 2 min
    async with served_local(tmp_path, **short_lease) as client:
        job = await edit_whole(client, clip)
    async with served_local(tmp_path, **short_lease) as client:
        done = await wait_until_ended(client, job["edit_id"])
        listed = (await client.call_tool("list_edits", {})).structured_content
    assert done["status"] == "succeeded", done
    assert [w["edit_id"] for w in done["windows"]] == [w["edit_id"] for w in job["windows"]]
    assert isinstance(listed, dict) and len(listed["edits"]) == 4  # the job and its three windows, no more
    assert indices(Path(done["local_path"])) == list(range(14 * FPS))


async def test_the_same_call_again_returns_the_running_job(tmp_path: Path, inputs: Path) -> None:
    """A repeat (same arguments, or the same idempotency key) is the job, not a second set of windows."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    async with served_fake(tmp_path, fake) as client:
        first = await edit_whole(client, clip, idempotency_key="long-1")
        again = await edit_whole(client, clip, idempotency_key="long-1")
        plain = await edit_whole(client, clip)
        repeat = await edit_whole(client, clip)
    assert again["edit_id"] == first["edit_id"] and again["duplicate_of_request"]
    assert repeat["edit_id"] == plain["edit_id"] and repeat["duplicate_of_request"]
    assert len(fake.creates) == 3  # the second job reused the first one's windows, still running
    assert [w["edit_id"] for w in plain["windows"]] == [w["edit_id"] for w in first["windows"]]


class Crash(BaseException):
    """The process dying mid-call: nothing after it runs, as after a kill."""


async def test_a_job_whose_sender_died_fails_naming_the_unsent_window_and_a_rerun_sends_the_rest(
    tmp_path: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after window 1 went out: once its lease lapses the job fails naming window 2 (never sent,
    nothing billed); the same request again sends windows 2 and 3 only, never window 1 a second time."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    real_cut, cuts = cutting.cut_clip, itertools.count()

    def cut_then_die(*args: Any) -> Any:
        if next(cuts) == 1:
            raise Crash
        return real_cut(*args)

    policy = PollPolicy(interval=1.0, max_interval=8.0, edit_timeout=600.0, lease_seconds=30.0)
    clock = FakeClock()
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        providers: dict[str, Provider] = {"krea": KreaProvider(http, api_key=TEST_KEY, base_url=BASE)}
        settings = make_settings(tmp_path, krea_api_key=TEST_KEY)
        store = SQLiteEditStore(tmp_path / "edits.sqlite3")
        service = EditService(store, providers, settings, owner="p1", clock=clock, lease_seconds=30.0)
        poller = Poller(
            store, providers, LocalArchive(tmp_path / "archive"), http, owner="p2", policy=policy, clock=clock
        )
        args = EditArgs("make it snow", str(clip), provider="krea", whole_clip=True)
        monkeypatch.setattr(cutting, "cut_clip", cut_then_die)
        with pytest.raises(Crash):
            await service.submit(args)
        monkeypatch.setattr(cutting, "cut_clip", real_cut)
        (job,) = [e for e in (await store.list_edits())[0] if e.part_of is None]
        assert len(fake.creates) == 1 and job.status == "running"
        clock.advance(31)  # the dead sender's lease lapses
        await poller.poll_once()
        failed = await store.get(job.edit_id)
        assert failed is not None and failed.status == "failed" and failed.error_message is not None
        assert "window 2 of 3 (4.5-9.5 s) was never sent" in failed.error_message
        again, repeat = await service.submit(args)
        await store.close()
    assert not repeat and again.edit_id != job.edit_id
    assert len(fake.creates) == 3  # windows 2 and 3; window 1 is the one already running
    plan = long_clips.plan_of(again)
    assert plan[0]["edit_id"] == long_clips.plan_of(failed)[0]["edit_id"] and plan[0]["reused"]


async def test_a_window_whose_create_outcome_is_unknown_is_never_sent_again(
    tmp_path: Path, inputs: Path
) -> None:
    """Window 2's create is answered with a 500 (the job may exist): the job stops there, a re-run does not
    resend that window, and only allow_duplicate=true sends the windows anew."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    creates = itertools.count()

    def lose_second_answer(kind: str, recorded: Any) -> Fault | None:
        return (
            Fault(kind="create", status=500, after=True) if kind == "create" and next(creates) == 1 else None
        )

    fake.chaos = lose_second_answer
    async with served_fake(tmp_path, fake) as client:
        first = await edit_whole(client, clip)
        second = await edit_whole(client, clip)
        assert len(fake.creates) == 2  # window 3 is not sent once window 2 failed; the re-run sends nothing
        forced = await edit_whole(client, clip, allow_duplicate=True)
    assert first["status"] == "failed" and "window 2 of 3" in first["error"]["message"]
    unsent = first["windows"][1]["edit_id"]
    message = second["error"]["message"]
    assert (
        second["status"] == "failed"
        and f"window 2 of 3 (4.5-9.5 s) was sent before as edit {unsent}" in message
    )
    assert "not sent again" in message and second["windows"][0]["edit_id"] == first["windows"][0]["edit_id"]
    assert forced["status"] == "running" and len(fake.creates) == 5
    assert not {w["edit_id"] for w in forced["windows"]} & {w["edit_id"] for w in first["windows"]}


async def test_cancelling_one_window_fails_its_job_naming_it(tmp_path: Path, inputs: Path) -> None:
    """cancel_edit on window 3's own edit: the job fails at once, naming the cancelled window."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    async with served_fake(tmp_path, fake, poll_max_interval=60.0) as client:
        job = await edit_whole(client, clip)
        third = job["windows"][2]["edit_id"]
        await client.call_tool("cancel_edit", {"edit_id": third})
        ended = await wait_until_ended(client, job["edit_id"], seconds=10)
    assert (
        ended["status"] == "failed"
        and f"window 3 of 3 (9-14 s, edit {third}) cancelled" in ended["error"]["message"]
    )
    statuses = [w["status"] for w in ended["windows"]]
    assert statuses[2] == "cancelled" and set(statuses[:2]) <= {"queued", "running"}  # the others run on
    assert len(fake.calls("cancel")) == 1


async def test_a_url_is_refused_and_a_short_clip_is_one_plain_edit(tmp_path: Path, inputs: Path) -> None:
    """whole_clip on a URL cannot be cut here: refused, nothing sent. On a 3 s clip: one ordinary edit."""
    fake = FakeKie(TEST_KEY)
    url = "https://cdn.example.com/in/long.mp4"
    async with served_fake(tmp_path / "a", fake) as client:
        refused = await client.call_tool("edit_video", {"prompt": "snow", "video": url, "whole_clip": True})
    assert refused.is_error and "whole_clip needs a local file" in text_of(refused)
    assert fake.requests == []
    short = make_counter_clip(inputs / "short.mp4", seconds=3)
    async with served_local(tmp_path) as client:
        record = await edit_whole(client, short)
        done = await wait_until_ended(client, record["edit_id"])
    assert record["windows"] == [] and record["provider_task_id"] is not None
    assert done["status"] == "succeeded" and indices(Path(done["local_path"]))[:3] == [0, 1, 2]


async def test_a_job_counts_its_whole_quote_against_the_budget_while_its_windows_go_out(
    tmp_path: Path, inputs: Path
) -> None:
    """At every window's insert the store's stored costs already hold the whole $1.50 (the job keeps what
    its unrecorded windows will cost), so a concurrent request cannot slip under a cap meanwhile; once all
    windows are recorded the job itself spends $0 and the windows the $1.50."""
    clip = make_counter_clip(inputs / "long.mp4", seconds=14)
    fake = FakeKrea(TEST_KEY, steps=("queued", *("running",) * 1000))
    seen: list[float] = []

    class Watching(InMemoryEditStore):
        async def add(self, edit: Any) -> None:
            await super().add(edit)
            if edit.part_of is not None:  # a window: what the store holds right after its insert
                recent = await self.created_since(0)
                seen.append(round(sum(e.estimated_cost_usd or 0.0 for e in recent), 6))

    prices: dict[str, Any] = {"prices": {"krea": {"usd": 0.1, "per": "second"}}}
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        providers: dict[str, Provider] = {"krea": KreaProvider(http, api_key=TEST_KEY, base_url=BASE)}
        settings = make_settings(tmp_path, krea_api_key=TEST_KEY, budget_usd=1.9, **prices)
        store = Watching()
        service = EditService(store, providers, settings, owner="p1", lease_seconds=30.0)
        job, _ = await service.submit(EditArgs("make it snow", str(clip), provider="krea", whole_clip=True))
        refused = EditArgs("make it rain", str(clip), provider="krea", start_seconds=0, end_seconds=5)
        with pytest.raises(Exception, match=r"\$0\.50"):
            await service.submit(refused)  # $1.50 + $0.50 > $1.90
        stored = await store.get(job.edit_id)
        windows = [e for e in await store.created_since(0) if e.part_of == job.edit_id]
    assert len(seen) == 3 and all(total >= 1.5 for total in seen), seen
    assert stored is not None and stored.estimated_cost_usd == 0.0
    assert round(sum(w.estimated_cost_usd or 0.0 for w in windows), 6) == 1.5
    assert len(fake.creates) == 3
