"""The small holes: unique kie upload names, idempotency by content, a store from the future, NUL bytes and
unsendable keys, a ':' in an allowed folder, Runway's failureCode scrubbed, invisible prompts and blank
watermarks."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx2
import pytest

from aleph_mcp.cli.doctor import key_checks
from aleph_mcp.cli.runtime import allow_video_dir
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import IdempotencyConflict, InvalidInput, NotConfigured
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore
from aleph_mcp.store.sqlite import MIGRATIONS

from .conftest import TEST_KEY, make_settings
from .fakes.kie import FakeKie
from .fakes.runway import FakeRunway
from .media import GRAY, make_clip

BASE = "http://fake.invalid"


async def test_two_different_files_with_one_name_get_different_names_at_kie(tmp_path: Path) -> None:
    """clip.mp4 from two folders: two upload names, two download URLs, neither overwrites the other."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_clip(tmp_path / "a" / "clip.mp4")
    second = make_clip(tmp_path / "b" / "clip.mp4", halves=(GRAY, GRAY))
    fake = FakeKie(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        kie = KieProvider(http, api_key=TEST_KEY, base_url=BASE, upload_base_url=BASE)
        urls = [await kie.upload(first), await kie.upload(second)]
    assert urls[0] != urls[1] and all(u.endswith("-clip.mp4") for u in urls)


def data_uri(payload: bytes) -> str:
    return "data:video/mp4;base64," + base64.b64encode(payload).decode()


async def test_an_idempotency_key_reused_for_another_data_uri_of_the_same_length_is_a_conflict(
    tmp_path: Path,
) -> None:
    """Two data URIs that look alike when stored (same type, same size) differ by content: refused."""
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, runway_api_key=TEST_KEY, probe_urls=False)
        service = EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="t")
        one = EditArgs("snow", data_uri(b"\x00" * 300), "runway", idempotency_key="k")
        await service.submit(one)
        with pytest.raises(IdempotencyConflict, match="different arguments"):
            await service.submit(EditArgs("snow", data_uri(b"\x01" * 300), "runway", idempotency_key="k"))
        again, repeated = await service.submit(one)
    assert repeated and len(fake.creates) == 1 and again.provider_task_id is not None


async def test_a_store_written_by_a_newer_release_is_refused_naming_both_versions(tmp_path: Path) -> None:
    """user_version beyond this release's migrations: refused, and the file is left as it was."""
    path = tmp_path / "edits.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 3}")
    db.close()
    with pytest.raises(NotConfigured, match=rf"version {len(MIGRATIONS) + 3}.*knows \({len(MIGRATIONS)}\)"):
        SQLiteEditStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 3
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    db.close()


async def test_a_nul_byte_in_a_path_is_a_clear_refusal(tmp_path: Path, inputs: Path) -> None:
    """`/inputs/clip\\x00.mp4` is refused as invalid input, never an internal error; nothing is stored."""
    store = InMemoryEditStore()
    settings = make_settings(tmp_path)
    from aleph_mcp.providers.local import LocalProvider

    service = EditService(store, {"local": LocalProvider(tmp_path / "jobs")}, settings, owner="t")
    with pytest.raises(InvalidInput, match="NUL byte"):
        await service.submit(EditArgs("snow", f"{inputs}/clip\x00.mp4", "local"))
    assert (await store.list_edits())[0] == []


async def test_a_key_with_a_newline_is_refused_before_anything_is_stored_and_doctor_flags_it(
    tmp_path: Path,
) -> None:
    """A pasted key with a line break: NotConfigured, no edit recorded as maybe sent; doctor says which."""
    fake = FakeRunway(TEST_KEY)
    bad = TEST_KEY + "\nX-Injected: yes"
    settings = make_settings(tmp_path, runway_api_key=bad, probe_urls=False)
    store = InMemoryEditStore()
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=bad, base_url=BASE)
        service = EditService(store, {"runway": provider}, settings, owner="t")
        with pytest.raises(NotConfigured, match="cannot be sent in an HTTP header") as refused:
            await service.submit(EditArgs("snow", "https://cdn.example.com/a.mp4", "runway"))
    assert bad not in str(refused.value) and TEST_KEY not in str(refused.value)
    assert (await store.list_edits())[0] == [] and fake.requests == []
    (check,) = key_checks(settings)
    assert check.status == "fail" and "runway" in check.name and TEST_KEY not in check.detail


async def test_a_folder_with_a_colon_in_its_name_is_allowed_from_the_cli(tmp_path: Path) -> None:
    """`aleph-mcp edit` on /videos/a:b/clip.mp4 allows exactly that folder, not `/videos/a` and `b`."""
    folder = tmp_path / "shoot 10:30"
    folder.mkdir()
    clip = make_clip(folder / "clip.mp4")
    settings = allow_video_dir(make_settings(tmp_path, allowed_dirs=""), clip)
    assert settings.allowed_dir_paths == [folder]
    store = InMemoryEditStore()
    from aleph_mcp.providers.local import LocalProvider

    service = EditService(store, {"local": LocalProvider(tmp_path / "jobs")}, settings, owner="t")
    intake = await service.check(EditArgs("mirror", str(clip), "local"))
    intake.discard()
    assert intake.video.display == str(clip)


async def test_runway_failure_codes_are_scrubbed_before_they_reach_a_record() -> None:
    """A failureCode echoing the key (or a wall of text) is scrubbed and trimmed like the message."""
    fake = FakeRunway(TEST_KEY, steps=("failed",))
    fake.failure_code = f"SAFETY.INPUT Bearer {TEST_KEY} " + "x" * 500
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        from aleph_mcp.models import EditRequest

        task = await provider.submit(EditRequest("snow", "https://cdn.example.com/a.mp4", "aleph2"))
        status = await provider.poll(task)
    assert status.error_code is not None and TEST_KEY not in status.error_code
    assert len(status.error_code) <= 80


@pytest.mark.parametrize("prompt", ["\u200b\u200b", "\u200d\ufeff \u2060", "\u00ad\u180e"])
async def test_a_prompt_of_invisible_characters_only_counts_as_empty(tmp_path: Path, prompt: str) -> None:
    """Zero-width spaces, joiners, BOMs: nothing to render, refused like an empty prompt."""
    from aleph_mcp.providers.local import LocalProvider

    settings = make_settings(tmp_path)
    service = EditService(InMemoryEditStore(), {"local": LocalProvider(tmp_path / "j")}, settings, owner="t")
    with pytest.raises(InvalidInput, match="prompt is empty"):
        await service.check(EditArgs(prompt, "/nowhere.mp4", "local"))


async def test_a_watermark_of_spaces_counts_as_none(tmp_path: Path) -> None:
    """On a provider without watermarks, '   ' is no watermark, not a refusal, and is not sent."""
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, runway_api_key=TEST_KEY, probe_urls=False)
        service = EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="t")
        edit, _ = await service.submit(
            EditArgs("snow", "https://cdn.example.com/a.mp4", "runway", watermark="   ")
        )
    assert "watermark" not in edit.options and edit.provider_task_id is not None
