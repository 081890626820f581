"""The command line's subcommands. Each returns its exit code; errors are raised for `cli.entry` to report."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio.to_thread

from aleph_mcp.app import open_archive
from aleph_mcp.cli.doctor import report, run_checks
from aleph_mcp.cli.output import (
    ERROR,
    OK,
    RUNNING,
    CliError,
    ProgressLine,
    emit_json,
    error_line,
    exit_code_for,
    hint,
    list_rows,
    percent,
    print_record,
    table,
)
from aleph_mcp.cli.runtime import allow_video_dir, follow, local_video, runtime
from aleph_mcp.config import Settings
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.models import Edit, EditList
from aleph_mcp.providers.registry import capabilities_of
from aleph_mcp.records import to_record

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]
VIEWER_GRACE = 3.0  # seconds to see whether the desktop viewer refused the file


def _progress(edit: Edit) -> str:
    return f" ({percent(edit.progress)})" if edit.progress is not None else ""


def follow_hint(edit_id: str) -> str:
    return f"Follow it with: aleph-mcp status {edit_id} --wait"


def finish(edit: Edit, settings: Settings, args: argparse.Namespace) -> int:
    """Print an edit (table or JSON) and turn its status into the exit code."""
    record = to_record(edit, poll_interval=settings.poll_interval)
    if args.json:
        emit_json(record.model_dump(mode="json"))
    else:
        print_record(record, edit)
    code = exit_code_for(edit.status)
    if code == RUNNING:
        hint(f"Edit {edit.edit_id} is still {edit.status}. {follow_hint(edit.edit_id)}")
    elif code == ERROR:
        error_line(f"edit {edit.edit_id} {edit.status}: {edit.error_message or 'no reason given'}")
    return code


async def edit(args: argparse.Namespace, settings: Settings) -> int:
    path = local_video(args.video)
    settings = allow_video_dir(settings, path)
    provider = args.provider or settings.resolved_default_provider
    line = ProgressLine()
    async with runtime(settings) as rt:
        state = rt.state(provider)

        async def progress(fraction: float, message: str) -> None:
            line.note(message)

        request = EditArgs(
            prompt=args.prompt,
            video=str(path) if path is not None else args.video.strip(),
            provider=args.provider,
            model=args.model,
            aspect_ratio=args.aspect_ratio,
            seed=args.seed,
            watermark=args.watermark,
            idempotency_key=args.idempotency_key,
            allow_duplicate=args.allow_duplicate,
        )
        started, duplicate = await state.service.submit(request, progress)
        if duplicate:
            why = "The idempotency key matches" if args.idempotency_key else "An identical request started"
            hint(f"{why} edit {started.edit_id}: nothing new was started (--allow-duplicate starts another).")
        if not args.wait:
            return _started(started, state.settings, args)
        done = await follow(state, rt.store, started.edit_id, args.timeout, line)
        return finish(done, state.settings, args)


def _started(edit: Edit, settings: Settings, args: argparse.Namespace) -> int:
    """`edit --no-wait`: the id on stdout (or the record with --json), how to follow it on stderr."""
    if edit.is_terminal:
        return finish(edit, settings, args)
    if args.json:
        emit_json(to_record(edit, poll_interval=settings.poll_interval).model_dump(mode="json"))
    else:
        print(edit.edit_id)
    hint(f"Started edit {edit.edit_id} with {edit.provider}. {follow_hint(edit.edit_id)}")
    caps = capabilities_of(edit.provider)
    if caps is not None and caps.renders_in_process:
        hint(
            f"The {edit.provider} provider renders in the process that follows the edit. This one is "
            "exiting, so `status --wait` (or a server on this data dir) picks the render up again shortly."
        )
    return RUNNING


async def status(args: argparse.Namespace, settings: Settings) -> int:
    async with runtime(settings) as rt:
        state = rt.state()
        current = await state.service.get(args.edit_id)
        if args.wait and not current.is_terminal:
            if current.provider not in state.service.providers:
                raise CliError(
                    f"Edit {current.edit_id} runs at {current.provider}, and there is no "
                    f"{current.provider} key here to follow it with (a server that has the key will).",
                    RUNNING,
                    code="not_configured",
                )
            state = rt.state(current.provider)
            current = await follow(state, rt.store, current.edit_id, args.timeout, ProgressLine())
        return finish(current, state.settings, args)


async def list_edits(args: argparse.Namespace, settings: Settings) -> int:
    async with runtime(settings) as rt:
        edits, cursor = await rt.state().service.list(
            status=args.status, provider=args.provider, limit=args.limit, cursor=args.cursor
        )
    records = [to_record(e, poll_interval=settings.poll_interval) for e in edits]
    if args.json:
        emit_json(EditList(edits=records, next_cursor=cursor).model_dump(mode="json"))
    elif records:
        print(list_rows(records))
    else:
        hint("No edits found. Start one with: aleph-mcp edit VIDEO PROMPT")
    if cursor and not args.json:
        hint(f"More: aleph-mcp list --cursor {cursor}")
    return OK


async def cancel(args: argparse.Namespace, settings: Settings) -> int:
    async with runtime(settings) as rt:
        state = rt.state()
        cancelled = await state.service.cancel(args.edit_id)
    record = to_record(cancelled, poll_interval=settings.poll_interval)
    if args.json:
        emit_json(record.model_dump(mode="json"))
    else:
        print_record(record, cancelled)
    return OK


async def open_video(args: argparse.Namespace, settings: Settings) -> int:
    async with runtime(settings) as rt:
        service = rt.state().service
        found = await service.get(args.edit_id)
        sheet = await service.compare_sheet(found)
    if not found.is_terminal:
        raise CliError(
            f"Edit {found.edit_id} is still {found.status}{_progress(found)}; there is no video yet. "
            + follow_hint(found.edit_id),
            RUNNING,
            code="still_running",
        )
    if found.status != "succeeded" or not found.local_path:
        raise CliError(f"Edit {found.edit_id} {found.status} and has no video: {found.error_message or ''}")
    video = await _archived_video(settings, found.local_path)
    compare = getattr(args, "compare", False)
    if compare and sheet is None:
        raise CliError(
            f"Edit {found.edit_id} has no before/after sheet: its input was not kept (an https URL input is "
            "not fetched again for it). Open the video instead.",
            code="missing",
        )
    opened = await _archived_video(settings, sheet, "before/after sheet") if sheet else None
    shown = opened if compare and opened is not None else video
    if args.json:
        emit_json(
            {
                "edit_id": found.edit_id,
                "status": found.status,
                "video": video,
                "location": found.local_path,
                "thumbnail": found.thumbnail_path,
                "compare": opened,
            }
        )
    else:
        print(shown)
    if args.show:
        await anyio.to_thread.run_sync(show_file, shown)
    return OK


LINK_SECONDS = 3600


async def _archived_video(settings: Settings, location: str, what: str = "video") -> str:
    """What a person opens: the file on this machine, or for an object store a presigned link (an hour)."""
    archive = open_archive(settings)
    if await archive.size(location) is None:
        raise CliError(f"The archived {what} {location} is missing (was it deleted?).", code="missing")
    path = archive.local_file(location)
    if path is not None:
        return str(path)
    link = await archive.link(location, LINK_SECONDS)
    if link is None:
        raise CliError(f"The archive gives no link to {location}.", code="missing")
    return link


def show_file(path: str) -> None:
    """Open `path` (a file or a link) with the desktop's viewer: os.startfile on Windows, `open` on macOS,
    else xdg-open."""
    if sys.platform == "win32":
        os.startfile(path)
        return
    command = "open" if sys.platform == "darwin" else "xdg-open"
    exe = shutil.which(command)
    if exe is None:
        raise CliError(f"No desktop viewer: `{command}` is not on PATH. Open the file yourself: {path}")
    # Detached, quiet, not waited for: xdg-open may run the viewer itself and stay until it is closed.
    viewer = subprocess.Popen(
        [exe, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        returncode = viewer.wait(timeout=VIEWER_GRACE)
    except subprocess.TimeoutExpired:
        return
    if returncode != 0:
        raise CliError(f"`{command}` could not open {path} (exit {returncode}). Open the file yourself.")


async def doctor(args: argparse.Namespace, settings: Settings) -> int:
    checks = await run_checks(settings)
    summary = report(checks, settings)
    if args.json:
        emit_json(summary)
    else:
        print(table([(c.name, c.status, c.detail) for c in checks], ("CHECK", "STATUS", "DETAIL")))
        fixes = [c for c in checks if c.fix and c.status in ("fail", "warn")]
        if fixes:
            print("\nTo fix:")
            print("\n".join(f"  - {c.name}: {c.fix}" for c in fixes))
        failed = sum(c.status == "fail" for c in checks)
        print("\nEverything needed works." if not failed else f"\n{failed} problem(s) to fix.")
    return OK if summary["ok"] else ERROR


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    """An offline edit end to end through the real server (see server/demo.py); nothing leaves the machine."""
    from aleph_mcp.server.demo import run_demo  # the MCP surface: it talks to the server as a client does

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="aleph-mcp-demo-"))
    return await run_demo(data_dir.resolve(), sys.stdout)


COMMANDS: dict[str, Command] = {
    "edit": edit,
    "status": status,
    "list": list_edits,
    "cancel": cancel,
    "open": open_video,
    "doctor": doctor,
    "demo": demo,
}
