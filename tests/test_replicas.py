"""Three HTTP replicas on one PostgreSQL and one S3 bucket (issue 15): 200 edits through random replicas in
30% faults, one replica SIGKILLed mid-download and restarted; no edit lost, none created twice, every video
readable from every replica, a subscription on one replica told of a change made on another, and a budget
cap held exactly when all three are asked at once."""

from __future__ import annotations

import base64
import io
import json
import random
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import av
from mcp import Client, MCPDeprecationWarning, types

from .conftest import TEST_KEY
from .fakes.base import FAKE_VIDEO, FakeAPI, Fault, State
from .fakes.chaos import Chaos
from .fakes.server import serve_fakes
from .fakes.vendors import FAKES
from .http_server import http_client
from .postgres import Databases
from .replicas import TOKEN, Replicas, replicas
from .s3 import S3Endpoint
from .test_faults import FAILS, REASON, WEATHER, render_steps

EDITS = 200
LONG = "a render that never ends"
SLOW = "a render that takes a while"  # the last edit's: its download is stalled once it is submitted


def steps_for(body: Any) -> tuple[State, ...]:
    text = json.dumps(body)
    if LONG in text:
        return ("running",) * 10_000
    return ("queued", *(("running",) * 20), "succeeded") if SLOW in text else render_steps(body)


def edit_call(n: int) -> dict[str, str]:
    fate = SLOW if n == EDITS - 1 else FAILS if n % 7 == 3 else "make it snow"
    return {
        "prompt": f"edit {n}: {fate}",
        "video": f"https://cdn.example.com/in/clip-{n}.mp4",
        "provider": list(FAKES)[n % len(FAKES)],
    }


def fakes_on_loopback() -> dict[str, FakeAPI]:
    fakes = {name: cls(TEST_KEY, failure_message=REASON) for name, cls in FAKES.items()}
    for fake in fakes.values():
        fake.steps_for = steps_for
    return fakes


async def submit(client: Client, call: dict[str, str]) -> dict[str, Any]:
    result = await client.call_tool("edit_video", call)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict), result.content
    return result.structured_content


async def send_all(group: Replicas, pick: random.Random) -> list[str]:
    """Edits 0..EDITS-2 twenty at a time through random replicas; the last alone, once all others are in."""
    ids: dict[int, str] = {}
    limiter = anyio.CapacityLimiter(20)
    async with group.clients() as clients:
        chosen = [pick.choice(clients) for _ in range(EDITS)]

        async def one(n: int) -> None:
            async with limiter:
                ids[n] = (await submit(chosen[n], edit_call(n)))["edit_id"]

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(EDITS - 1):
                    tg.start_soon(one, n)
            await one(EDITS - 1)
    return [ids[n] for n in range(EDITS)]


def stall_download(group: Replicas, fakes: dict[str, FakeAPI], edit_id: str) -> FakeAPI:
    """The edit's result download sends half the file, then a byte every 0.3 s: it never times out."""
    ((provider, task_id),) = group.rows(
        "SELECT provider, provider_task_id FROM edits WHERE edit_id = %s", (edit_id,)
    )
    fake = fakes[provider]
    fake.inject(
        Fault(kind="file", match=f"{task_id}.mp4", hang=60.0, partial=len(FAKE_VIDEO) // 2, trickle=0.3)
    )
    return fake


async def kill_the_downloader(group: Replicas, fake: FakeAPI, edit_id: str) -> int:
    """SIGKILL the replica whose lease covers the edit while its download is in progress; returns its pid."""
    (task_id,) = group.rows("SELECT provider_task_id FROM edits WHERE edit_id = %s", (edit_id,))[0]
    with anyio.fail_after(30):
        # Under way: its file was asked for, the stall (the only queued fault) taken, and the answer held.
        while not downloads(fake, task_id) or fake.faults or not fake.holding["file"]:
            await anyio.sleep(0.02)
    ((owner, status),) = group.rows("SELECT lease_owner, status FROM edits WHERE edit_id = %s", (edit_id,))
    assert status == "running" and owner, (status, owner)
    victim = group.by_pid(int(owner.split(":")[1]))
    await victim.kill()
    return int(owner.split(":")[1])


def downloads(fake: FakeAPI, task_id: str) -> int:
    return sum(r.path.endswith(f"{task_id}.mp4") for r in fake.calls("file"))


async def all_ended(group: Replicas, count: int) -> list[tuple[Any, ...]]:
    with anyio.fail_after(60):
        while True:
            rows = group.rows(
                "SELECT edit_id, provider, provider_task_id, prompt, status, error_message, local_path "
                "FROM edits ORDER BY created_at"
            )
            if len(rows) == count and all(r[4] in ("succeeded", "failed", "cancelled") for r in rows):
                return rows
            await anyio.sleep(0.2)


def assert_one_create_per_edit(rows: list[tuple[Any, ...]], fakes: dict[str, FakeAPI]) -> None:
    """Each edit has its own task at its provider, made from its own prompt, and no other task exists."""
    for name, fake in fakes.items():
        mine = [r for r in rows if r[1] == name]
        assert sorted(fake.tasks) == sorted(r[2] or "-" for r in mine), name
        made = Counter(json.dumps(task.body) for task in fake.tasks.values())
        assert max(made.values()) == 1, name
        for row in mine:
            assert row[3] in json.dumps(fake.tasks[row[2]].body), row[0]


async def assert_readable(client: Client, edit_id: str) -> None:
    """The finished video, read through this replica, opens in PyAV as the fake's clip."""
    result = await client.read_resource(f"aleph://edits/{edit_id}/video")
    (content,) = result.contents
    assert isinstance(content, types.BlobResourceContents), content
    data = base64.b64decode(content.blob)
    assert data == FAKE_VIDEO
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert len(frames) == 4 and (frames[-1].pts or 0) > (frames[0].pts or 0)
    assert (stream.codec_context.width, stream.codec_context.height) == (32, 32)


async def test_two_hundred_edits_over_three_replicas_survive_faults_and_a_killed_downloader(
    tmp_path: Path, postgres_databases: Databases, s3: S3Endpoint
) -> None:
    chaos = Chaos(rate=0.3, faults=WEATHER, seed=15, retry_after="1")
    fakes = fakes_on_loopback()
    chaos.attach(fakes.values())
    with serve_fakes(fakes) as origin, replicas(tmp_path, origin, postgres_databases, s3) as group:
        await group.healthy()
        ids = await send_all(group, random.Random(15))
        slow = stall_download(group, fakes, ids[-1])
        killed = await kill_the_downloader(group, slow, ids[-1])
        group.by_pid(killed).start()  # the same replica, back on its port
        await group.healthy()
        rows = await all_ended(group, EDITS)
        async with group.clients() as clients:
            for row in rows:
                expected = "failed" if FAILS in row[3] else "succeeded"
                assert row[4] == expected, (row, group.logs()[-3000:])
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for row in rows:
                        if row[4] == "succeeded":
                            for client in clients:
                                tg.start_soon(assert_readable, client, row[0])
            assert_one_create_per_edit(rows, fakes)
            await subscription_hears_another_replica(group, clients)
    assert sorted(r[0] for r in rows) == sorted(ids)
    (slow_row,) = [r for r in rows if r[0] == ids[-1]]
    assert slow_row[4] == "succeeded" and slow_row[6].startswith(f"s3://{group.bucket}/")
    assert downloads(slow, str(slow_row[2])) >= 2  # another replica took the lease over and fetched it again
    keys = s3.keys(group.bucket)
    assert sorted(k for k in keys if k.endswith(".mp4")) == sorted(
        f"videos/{r[0]}.mp4" for r in rows if r[4] == "succeeded"
    )
    assert s3.open_uploads(group.bucket) == []
    assert {(kind, name) for kind, names in WEATHER.items() for name in names} <= set(chaos.injected)
    assert 0.2 <= chaos.total / sum(chaos.seen.values()) <= 0.4
    assert TEST_KEY not in group.logs()


async def subscription_hears_another_replica(group: Replicas, clients: list[Client]) -> None:
    """A legacy-era subscription on replica 0 hears of a cancel made on replica 1 (LISTEN/NOTIFY)."""
    heard: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard.append(str(message.params.uri))

    call = {"prompt": LONG, "video": "https://cdn.example.com/in/long.mp4", "provider": "runway"}
    edit_id = (await submit(clients[1], call))["edit_id"]
    uri = f"aleph://edits/{edit_id}"
    async with http_client(group.members[0].base, TOKEN, mode="legacy", message_handler=on_message) as legacy:
        with warnings.catch_warnings():  # deprecated for 2026-07-28, but 2025-era hosts send it
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await legacy.subscribe_resource(uri)
        with anyio.fail_after(10):
            while (await status(legacy, edit_id)) != "running":
                await anyio.sleep(0.1)
        heard.clear()
        cancelled = await clients[1].call_tool("cancel_edit", {"edit_id": edit_id})
        assert not cancelled.is_error, cancelled.content
        with anyio.fail_after(5):
            while uri not in heard:
                await anyio.sleep(0.02)
        assert await status(legacy, edit_id) == "cancelled"


async def status(client: Client, edit_id: str) -> str:
    result = await client.call_tool("get_edit_status", {"edit_id": edit_id})
    assert isinstance(result.structured_content, dict), result.content
    return str(result.structured_content["status"])


async def test_a_budget_cap_holds_exactly_when_all_three_replicas_are_asked_at_once(
    tmp_path: Path, postgres_databases: Databases, s3: S3Endpoint
) -> None:
    """ALEPH_MCP_BUDGET_EDITS=5 and 18 different edits fired at once, six through each replica: five go out,
    thirteen are refused as over budget, and the fakes saw five creates."""
    fakes = fakes_on_loopback()
    cap, asked = 5, 18
    with (
        serve_fakes(fakes) as origin,
        replicas(tmp_path, origin, postgres_databases, s3, ALEPH_MCP_BUDGET_EDITS=str(cap)) as group,
    ):
        await group.healthy()
        outcomes: list[Any] = []
        async with group.clients() as clients:
            ready = anyio.Event()

            async def one(n: int) -> None:
                await ready.wait()
                outcomes.append(await clients[n % 3].call_tool("edit_video", edit_call(n)))

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for n in range(asked):
                        tg.start_soon(one, n)
                    await anyio.sleep(0.1)
                    ready.set()
        rows = group.rows("SELECT status, error_code FROM edits")
    refused = [o for o in outcomes if o.is_error]
    assert len(outcomes) - len(refused) == cap
    assert len(refused) == asked - cap
    assert all("budget" in json.dumps([c.model_dump() for c in o.content]).lower() for o in refused)
    assert sum(len(fake.tasks) for fake in fakes.values()) == cap
    assert len([r for r in rows if r[1] != "budget_exceeded"]) == cap, rows
