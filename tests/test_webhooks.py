"""Provider webhooks over HTTP: a real one finishes an edit at once; forged, unknown, unsigned: nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2

from .conftest import TEST_KEY, make_settings
from .fakes.base import FakeAPI
from .fakes.kie import FakeKie
from .fakes.server import serve_fakes
from .http_server import http_client, served_http

VIDEO = "https://cdn.example.com/in/clip.mp4"
SLOW_POLLS = 30.0  # seconds: nothing but a webhook can finish an edit within a test's few seconds


@contextmanager
def kie_fake() -> Iterator[tuple[str, FakeAPI]]:
    fake = FakeKie(TEST_KEY, steps=("running",) * 10_000)
    with serve_fakes({"kie": fake}) as origin:
        yield origin, fake


@asynccontextmanager
async def started(
    tmp_path: Path, origin: str, **overrides: Any
) -> AsyncIterator[tuple[str, Any, dict[str, Any]]]:
    """An HTTP server with kie at `origin`, public at its own URL, and one edit started on it."""
    settings = make_settings(
        tmp_path,
        http_tokens="ops=tok",
        default_provider="kie",
        kie_api_key=TEST_KEY,
        kie_base_url=f"{origin}/kie",
        kie_upload_base_url=f"{origin}/kie",
        probe_urls=False,
        poll_interval=SLOW_POLLS,
        poll_max_interval=SLOW_POLLS,
        **overrides,
    )
    async with served_http(settings, public=True) as base, http_client(base, "tok") as client:
        record = (await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})).structured_content
        assert isinstance(record, dict) and record["status"] in ("queued", "running"), record
        yield base, client, record


def callback_of(fake: FakeAPI) -> str:
    (create,) = fake.creates
    url: str = create.json["callBackUrl"]
    return url


def finish(fake: FakeAPI, task_id: str) -> None:
    task = fake.tasks[task_id]
    task.steps, task.position = ("succeeded",), 0


async def status(client: Any, edit_id: str, wait: float = 0) -> dict[str, Any]:
    result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": wait})
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_a_webhook_finishes_an_edit_in_well_under_one_poll_interval(tmp_path: Path) -> None:
    """kie calls back; the poller checks through kie's API at once; the edit succeeds within seconds."""
    with kie_fake() as (origin, fake):
        async with started(tmp_path, origin) as (_, client, record), httpx2.AsyncClient() as http:
            callback = callback_of(fake)
            assert callback.startswith("http://127.0.0.1:") and "/webhooks/kie/" in callback
            finish(fake, record["provider_task_id"])
            began = time.monotonic()
            body = {"code": 200, "msg": "success", "taskId": record["provider_task_id"]}
            assert (await http.post(callback, json=body)).status_code == 200
            assert (await http.post(callback, json=body)).status_code == 200  # a duplicate is harmless
            with anyio.fail_after(15):
                done = await status(client, record["edit_id"], wait=10)
            took = time.monotonic() - began
    assert done["status"] == "succeeded" and took < SLOW_POLLS / 3, (done["status"], took)
    assert len(fake.creates) == 1


async def test_a_forged_webhook_with_the_right_secret_changes_nothing(tmp_path: Path) -> None:
    """The body claims success with another video; kie's API says running: the edit stays running."""
    with kie_fake() as (origin, fake):
        async with started(tmp_path, origin) as (_, client, record), httpx2.AsyncClient() as http:
            forged = {
                "code": 200,
                "msg": "success",
                "taskId": record["provider_task_id"],
                "data": {"result_video_url": "https://evil.example.com/fake.mp4"},
            }
            assert (await http.post(callback_of(fake), json=forged)).status_code == 200
            polled = len(fake.calls("status"))
            with anyio.fail_after(10):
                while len(fake.calls("status")) == polled:  # the webhook made the poller look at kie
                    await anyio.sleep(0.05)
            now = await status(client, record["edit_id"])
    assert now["status"] == "running" and now["output_url"] is None


async def test_unknown_secrets_and_the_wrong_provider_get_404(tmp_path: Path) -> None:
    """A made-up secret, or a real one under another provider's path, answers 404 and polls nothing."""
    with kie_fake() as (origin, fake):
        async with started(tmp_path, origin) as (base, _client, _record), httpx2.AsyncClient() as http:
            secret = callback_of(fake).rsplit("/", 1)[1]
            polled = len(fake.calls("status"))
            for path in ("/webhooks/kie/not-a-secret", f"/webhooks/krea/{secret}", "/webhooks/kie/"):
                answer = await http.post(f"{base}{path}", json={})
                assert answer.status_code == 404, path
            assert len(fake.calls("status")) == polled


def kie_signature(key: str, task_id: str, stamp: str) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


async def test_kie_webhooks_must_carry_a_valid_recent_signature_when_a_key_is_set(tmp_path: Path) -> None:
    """Missing, wrong, stale or other-task signatures: 401; the right one: 200."""
    key = "hmac-key-from-kie"
    with kie_fake() as (origin, fake):
        async with started(tmp_path, origin, kie_webhook_hmac_key=key) as (_, _client, record):
            task = record["provider_task_id"]
            now = str(int(time.time()))
            stale = str(int(time.time()) - 3600)
            cases = [
                ({}, 401),
                ({"x-webhook-timestamp": now, "x-webhook-signature": "AAAA"}, 401),
                ({"x-webhook-timestamp": stale, "x-webhook-signature": kie_signature(key, task, stale)}, 401),
                ({"x-webhook-timestamp": now, "x-webhook-signature": kie_signature(key, "other", now)}, 401),
                ({"x-webhook-timestamp": now, "x-webhook-signature": kie_signature(key, task, now)}, 200),
            ]
            async with httpx2.AsyncClient() as http:
                for headers, expected in cases:
                    answer = await http.post(callback_of(fake), json={"taskId": task}, headers=headers)
                    assert answer.status_code == expected, headers


async def test_the_webhook_secret_is_stored_only_as_a_hash(tmp_path: Path) -> None:
    """The callback URL's secret never reaches the store file or the record."""
    with kie_fake() as (origin, fake):
        async with started(tmp_path, origin) as (_, client, record):
            secret = callback_of(fake).rsplit("/", 1)[1]
            shown = await status(client, record["edit_id"])
    assert secret not in str(shown)
    assert secret.encode() not in (tmp_path / "data" / "edits.sqlite3").read_bytes()
