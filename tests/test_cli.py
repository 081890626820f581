"""The command line: every subcommand, --json, exit codes 0-3, a real local render, doctor's key masking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from aleph_mcp.cli import main
from aleph_mcp.providers.local.watermark import Watermark

from .conftest import TEST_KEY
from .fakes.base import FAKE_VIDEO
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes
from .media import LEFT, first_frame, make_clip

ROOT = Path(__file__).resolve().parents[1]
BOUNDED = ("--timeout", "30")  # a broken poller ends a waiting command with exit 3 instead of hanging


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`aleph-mcp ARGS` in-process, on a data dir of its own and away from any .env file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "data"))

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def long_clip(inputs: Path) -> Path:
    """Three seconds: long enough for every Runway model."""
    return make_clip(inputs / "long.mp4", seconds=3, fps=6)


@pytest.fixture
def runway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRunway]:
    """A loopback fake of Runway's API whose tasks stay running for a few status reads."""
    fake = FakeRunway(TEST_KEY, steps=("queued", "running", "running", "succeeded"))
    with serve_fakes({"runway": fake}) as origin:
        monkeypatch.setenv("ALEPH_MCP_RUNWAY_API_KEY", TEST_KEY)
        monkeypatch.setenv("ALEPH_MCP_RUNWAY_BASE_URL", f"{origin}/runway")
        monkeypatch.setenv("ALEPH_MCP_POLL_INTERVAL", "0.05")
        monkeypatch.setenv("ALEPH_MCP_POLL_MAX_INTERVAL", "0.1")
        yield fake


def is_grayscale(frame: np.ndarray) -> bool:
    return bool(np.abs(frame[..., 0].astype(int) - frame[..., 2]).max() <= 3)


# -- edit with the local provider --------------------------------------------------------------------
def test_edit_waits_for_a_local_render_and_prints_where_the_video_is(cli: Cli, clip: Path) -> None:
    """A relative path is resolved, its folder allowed, and the finished video and thumbnail are printed."""
    result = cli("edit", *BOUNDED, "inputs/clip.mp4", "black and white, add a dragon")
    assert result.code == 0, result.err
    rows = dict(line.split(None, 1) for line in result.out.splitlines())
    assert rows["status"] == "succeeded"
    assert "not understood (ignored): add a dragon" in rows["notes"]
    video, thumbnail = Path(rows["video"]), Path(rows["thumbnail"])
    assert video.is_file() and thumbnail.is_file()
    assert is_grayscale(first_frame(video)) and not is_grayscale(first_frame(clip))
    assert "succeeded  100%" in result.err  # the progress line, on stderr


def test_edit_json_is_the_status_record_of_a_mirrored_video(cli: Cli, clip: Path) -> None:
    """--json prints the EditRecord; the archived video really is mirrored."""
    result = cli("edit", *BOUNDED, str(clip), "mirror", "--json")
    assert result.code == 0, result.err
    record = result.json
    assert record["status"] == "succeeded" and record["provider"] == "local"
    assert record["video_uri"] == f"aleph://edits/{record['edit_id']}/video"
    assert record["check_again_in_seconds"] is None and record["error"] is None
    frame = first_frame(Path(record["local_path"]))
    right = frame[frame.shape[0] // 2, frame.shape[1] - 10]
    assert abs(int(right[0]) - LEFT[0]) < 25 and abs(int(right[2]) - LEFT[2]) < 25


def test_the_watermark_blend_touches_only_the_bottom_right_corner() -> None:
    """Watermark.apply brightens text pixels bottom-right and leaves every other pixel byte for byte."""
    pixels = np.zeros((180, 320, 3), dtype=np.uint8)
    pixels[:] = (40, 60, 160)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
    before = frame.to_ndarray()
    after = Watermark("aleph-mcp", 320, 180).apply(frame).to_ndarray()
    luma_before, luma_after = before[:180].astype(int), after[:180].astype(int)
    changed = np.argwhere(luma_after != luma_before)
    assert len(changed) > 50 and (luma_after - luma_before).max() > 60
    assert changed[:, 0].min() > 180 * 3 // 4 and changed[:, 1].min() > 320 // 2
    assert np.array_equal(before[:90], after[:90])  # the top half of Y is untouched


def test_a_watermark_changes_the_bottom_right_corner_of_the_video(cli: Cli, inputs: Path) -> None:
    """--watermark reaches the local render: the bottom-right corner changes, the top-left hardly does."""
    clip = make_clip(inputs / "wide.mp4", size=(320, 180))
    plain = cli("edit", *BOUNDED, str(clip), "invert", "--json").json
    marked = cli("edit", *BOUNDED, str(clip), "invert", "--watermark", "aleph-mcp", "--json").json
    assert "watermark: 'aleph-mcp'" in marked["notes"]
    a = first_frame(Path(plain["local_path"])).astype(int)
    b = first_frame(Path(marked["local_path"])).astype(int)
    diff = np.abs(a - b).max(axis=2)
    height, width = diff.shape
    corner, top_left = diff[-height // 4 :, -width // 3 :], diff[: height // 4, : width // 3]
    # Outside the text only codec noise differs (x264 decides per frame, near the moving square).
    assert (corner > 40).mean() > 0.04
    assert (top_left > 40).mean() < 0.01


def test_edit_no_wait_prints_the_id_and_status_follows_it_later(cli: Cli, clip: Path) -> None:
    """--no-wait: only the id on stdout and exit 3; `status` is 3 until `status --wait` sees it through."""
    started = cli("edit", str(clip), "sepia", "--no-wait")
    assert started.code == 3
    edit_id = started.out.strip()
    assert edit_id.startswith("ed_") and f"aleph-mcp status {edit_id} --wait" in started.err
    pending = cli("status", edit_id, "--json")
    assert pending.code == 3 and pending.json["status"] in ("queued", "running")
    done = cli("status", edit_id, "--wait", *BOUNDED, "--json")
    assert done.code == 0 and done.json["status"] == "succeeded"
    assert Path(done.json["local_path"]).is_file()


def test_edit_gives_up_waiting_at_the_timeout_with_exit_3(cli: Cli, clip: Path) -> None:
    """--timeout stops waiting (the edit goes on) and says how to follow it."""
    result = cli("edit", str(clip), "blur", "--timeout", "0.01", "--json")
    assert result.code == 3
    assert result.json["status"] in ("queued", "running")
    assert "still" in result.err


# -- refusals: exit 2, nothing stored or sent ------------------------------------------------------
def test_a_provider_without_a_key_is_refused_with_exit_2_and_nothing_is_stored(cli: Cli, clip: Path) -> None:
    """NotConfigured exits 2 with one stderr line and a JSON error; the store stays empty."""
    result = cli("edit", str(clip), "mirror", "--provider", "runway", "--json")
    assert result.code == 2
    assert result.json["error"]["code"] == "not_configured"
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert cli("list", "--json").json == {"edits": [], "next_cursor": None}


def test_invalid_input_is_refused_with_exit_2(
    cli: Cli, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing file, a seed the local provider cannot take, and a file outside ALEPH_MCP_ALLOWED_DIRS."""
    assert cli("edit", str(tmp_path / "nope.mp4"), "mirror").code == 2
    seeded = cli("edit", str(clip), "mirror", "--seed", "7")
    assert seeded.code == 2 and "seed" in seeded.err
    monkeypatch.setenv("ALEPH_MCP_ALLOWED_DIRS", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    outside = cli("edit", str(clip), "mirror")
    assert outside.code == 2 and "outside the allowed directories" in outside.err


def test_bad_arguments_and_bad_configuration_are_one_line_errors(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses --limit 0 (exit 2); an invalid variable is named in one line (exit 1)."""
    with pytest.raises(SystemExit) as refused:
        main(["list", "--limit", "0"])
    assert refused.value.code == 2
    monkeypatch.setenv("ALEPH_MCP_POLL_INTERVAL", "-1")
    result = cli("list")
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "ALEPH_MCP_POLL_INTERVAL" in result.err


# -- status, list, cancel, open ----------------------------------------------------------------------
def test_status_of_an_unknown_edit_is_an_error(cli: Cli) -> None:
    """Exit 1 with a readable line; --json puts the error on stdout too."""
    result = cli("status", "ed_missing", "--json")
    assert result.code == 1
    assert result.json["error"]["code"] == "not_found"
    assert result.err.startswith("aleph-mcp: error: No edit 'ed_missing'")


def test_list_shows_a_table_filters_and_pages(cli: Cli, clip: Path) -> None:
    """An aligned table by default; --json pages with next_cursor; --status filters."""
    first = cli("edit", *BOUNDED, str(clip), "invert", "--json").json
    second = cli("edit", str(clip), "sepia", "--no-wait").out.strip()
    table = cli("list")
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split() == ["EDIT", "STATUS", "PROVIDER", "PROGRESS", "CREATED", "PROMPT"]
    assert [row.split()[0] for row in rows] == [second, first["edit_id"]]
    assert header.index("STATUS") == rows[0].index(rows[0].split()[1])  # columns line up
    page = cli("list", "--limit", "1", "--json").json
    assert [e["edit_id"] for e in page["edits"]] == [second] and page["next_cursor"]
    rest = cli("list", "--cursor", page["next_cursor"], "--json").json
    assert [e["edit_id"] for e in rest["edits"]] == [first["edit_id"]] and rest["next_cursor"] is None
    done = cli("list", "--status", "succeeded", "--json").json
    assert [e["edit_id"] for e in done["edits"]] == [first["edit_id"]]


def test_open_prints_the_archived_path_and_refuses_unfinished_edits(cli: Cli, clip: Path) -> None:
    """`open` prints only the path (or JSON with the thumbnail); an unfinished edit gives exit 3."""
    record = cli("edit", *BOUNDED, str(clip), "mirror", "--json").json
    opened = cli("open", record["edit_id"])
    assert opened.code == 0 and opened.out == record["local_path"] + "\n"
    as_json = cli("open", record["edit_id"], "--json").json
    assert as_json["video"] == record["local_path"] and Path(as_json["thumbnail"]).is_file()
    pending = cli("edit", str(clip), "sepia", "--no-wait").out.strip()
    unfinished = cli("open", pending)
    assert unfinished.code == 3 and "no video yet" in unfinished.err


def test_open_compare_prints_the_before_after_sheet(cli: Cli, clip: Path) -> None:
    """`open --compare` prints the finished edit's sheet, a JPEG of two rows; JSON names it too."""
    record = cli("edit", *BOUNDED, str(clip), "mirror", "--json").json
    opened = cli("open", record["edit_id"], "--compare")
    sheet = Path(opened.out.strip())
    assert opened.code == 0 and sheet.name == f"{record['edit_id']}.compare.jpg"
    with Image.open(sheet) as image:
        assert image.format == "JPEG" and image.width > image.height
    assert cli("open", record["edit_id"], "--json").json["compare"] == str(sheet)
    sheet.unlink()
    missing = cli("open", record["edit_id"], "--compare")
    assert missing.code != 0 and "no before/after sheet" in missing.err


def test_open_show_runs_the_desktop_viewer_or_says_there_is_none(
    cli: Cli, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--show hands the file to xdg-open/open; with neither on PATH it is a clear error (exit 1)."""
    edit_id = cli("edit", *BOUNDED, str(clip), "mirror", "--json").json["edit_id"]
    bin_dir, opened = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    for name in ("xdg-open", "open"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    shown = cli("open", edit_id, "--show")
    assert shown.code == 0 and opened.read_text() == shown.out.strip()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = cli("open", edit_id, "--show")
    assert missing.code == 1 and "No desktop viewer" in missing.err


# -- hosted provider on a loopback fake ------------------------------------------------------------
def test_a_hosted_edit_started_without_waiting_is_followed_by_status(
    cli: Cli, long_clip: Path, runway: FakeRunway
) -> None:
    """runway (fake): upload + one create, exit 3; status --wait archives the vendor's video (exit 0)."""
    started = cli("edit", str(long_clip), "make it snow", "--provider", "runway", "--no-wait", "--json")
    assert started.code == 3, started.err
    record = started.json
    assert record["provider"] == "runway" and record["provider_task_id"] in runway.tasks
    assert len(runway.creates) == 1 and len(runway.uploads) == 1
    assert cli("status", record["edit_id"]).code == 3
    done = cli("status", record["edit_id"], "--wait", *BOUNDED, "--json")
    assert done.code == 0 and done.json["status"] == "succeeded"
    assert Path(done.json["local_path"]).read_bytes() == FAKE_VIDEO
    assert TEST_KEY not in started.out + started.err + done.out + done.err


def test_status_wait_without_the_providers_key_says_so_instead_of_hanging(
    cli: Cli, long_clip: Path, runway: FakeRunway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit started with a key that this shell no longer has cannot be followed here: exit 3, a reason."""
    edit_id = cli("edit", str(long_clip), "make it snow", "--provider", "runway", "--no-wait").out.strip()
    monkeypatch.delenv("ALEPH_MCP_RUNWAY_API_KEY")
    result = cli("status", edit_id, "--wait", *BOUNDED)
    assert result.code == 3 and "no runway key here" in result.err


def test_cancel_stops_a_running_edit_and_a_failed_edit_exits_1(
    cli: Cli, long_clip: Path, runway: FakeRunway
) -> None:
    """cancel exits 0 and the provider sees it; the edit's status is then cancelled (exit 1)."""
    runway.steps = ("queued", "running")
    edit_id = cli("edit", str(long_clip), "make it snow", "--provider", "runway", "--no-wait").out.strip()
    cancelled = cli("cancel", edit_id, "--json")
    assert cancelled.code == 0 and cancelled.json["status"] == "cancelled"
    assert runway.calls("cancel") and all(task.cancelled for task in runway.tasks.values())
    after = cli("status", edit_id)
    assert after.code == 1 and "cancelled" in after.err
    again = cli("cancel", edit_id)
    assert again.code == 1 and "already ended" in again.err


def test_an_edit_that_fails_at_the_provider_exits_1_with_its_reason(
    cli: Cli, long_clip: Path, runway: FakeRunway
) -> None:
    """--wait on a render the vendor fails: the record shows the error and stderr one line."""
    runway.steps = ("queued", "failed")
    result = cli("edit", *BOUNDED, str(long_clip), "make it snow", "--provider", "runway", "--json")
    assert result.code == 1
    assert result.json["status"] == "failed" and result.json["error"]["message"]
    assert "failed" in result.err and TEST_KEY not in result.out + result.err


# -- doctor ------------------------------------------------------------------------------------------
def test_doctor_masks_keys_and_reports_what_works(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, inputs: Path
) -> None:
    """A configured key shows as key_…abcd and never whole; store, PyAV and allowed dirs are checked."""
    secret = "kie-secret-0123456789abcd"
    monkeypatch.setenv("KIE_API_KEY", secret)
    monkeypatch.setenv("ALEPH_MCP_ALLOWED_DIRS", str(inputs))
    human = cli("doctor")
    assert human.code == 0, human.out
    assert "key_…abcd" in human.out and "Everything needed works." in human.out
    report = cli("doctor", "--json")
    assert report.code == 0 and report.json["ok"] is True
    assert report.json["providers"]["kie"] == {"configured": True, "key": "key_…abcd"}
    assert report.json["default_provider"] == "kie"
    statuses = {c["name"]: c["status"] for c in report.json["checks"]}
    assert statuses["store"] == statuses["pyav"] == statuses["allowed dirs"] == "ok"
    assert statuses["provider runway"] == "off"
    for result in (human, report):
        assert secret not in result.out + result.err and secret[:-4] not in result.out + result.err


def test_doctor_exits_1_and_says_what_to_fix(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A data dir that is a file and a missing allowed dir are failures with a fix each."""
    (tmp_path / "not-a-dir").write_text("x")
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "not-a-dir"))
    monkeypatch.setenv("ALEPH_MCP_ALLOWED_DIRS", str(tmp_path / "missing"))
    result = cli("doctor")
    assert result.code == 1
    assert "To fix:" in result.out and "ALEPH_MCP_DATA_DIR" in result.out
    failed = {c["name"] for c in cli("doctor", "--json").json["checks"] if c["status"] == "fail"}
    assert failed == {"data dir", "archive", "store", "allowed dirs"}


# -- real processes --------------------------------------------------------------------------------
def run_module(tmp_path: Path, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ALEPH_MCP_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "aleph_mcp", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        stdin=stdin,
        check=False,
    )


@pytest.mark.parametrize("argv", [[], ["serve"]])
def test_serve_with_stdin_closed_exits_cleanly_without_writing_to_stdout(
    tmp_path: Path, argv: list[str]
) -> None:
    """`aleph-mcp` and `aleph-mcp serve` speak MCP on stdio: at EOF they stop, exit 0, print nothing."""
    result = run_module(tmp_path, *argv, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_python_m_aleph_mcp_edits_offline_and_reports_exit_codes(tmp_path: Path, clip: Path) -> None:
    """The real entry point: exit 0 and a grayscale MP4 for a good edit, exit 2 for a refused one."""
    done = run_module(tmp_path, "edit", str(clip), "grayscale", "--json")
    assert done.returncode == 0, done.stderr
    assert is_grayscale(first_frame(Path(json.loads(done.stdout)["local_path"])))
    refused = run_module(tmp_path, "edit", str(clip), "grayscale", "--provider", "krea")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("aleph-mcp: error: Provider krea has no API key")
