"""Command line: `aleph-mcp` (or `aleph-mcp serve`) serves MCP over stdio; the other subcommands are for
people and scripts: edit, status, list, cancel, open, doctor (see the README's "Command line" section).

`serve` never writes to stdout (it is the MCP channel); every log line of every subcommand goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import anyio
from pydantic import ValidationError

from aleph_mcp import __version__
from aleph_mcp.cli.output import ERROR, REFUSED, CliError, emit_json, error_line
from aleph_mcp.config import ALL_PROVIDERS
from aleph_mcp.models import ASPECT_RATIOS, SEED_MAX

logger = logging.getLogger(__name__)
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
INTERRUPTED = 130
EXIT_CODES = """\
exit codes:
  0  done (the edit succeeded, or the command did what it was asked)
  1  error, or the edit ended failed or cancelled
  2  refused before anything was sent (invalid input, provider not configured)
  3  the edit is still running (status of an unfinished edit, edit --no-wait, --timeout reached)
"""


def _configure_logging(level: str) -> None:
    # stdout is the MCP channel: every log line goes to stderr. The level is set on the handler too, so a
    # client asking for more (MCP logging/setLevel) gets more without changing what stderr shows.
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.setLevel(level.upper())


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and {SEED_MAX}")
    return value


def _add_edit(commands: Any, common: argparse.ArgumentParser) -> None:
    edit = commands.add_parser("edit", parents=[common], help="start an edit and (by default) wait for it")
    edit.add_argument("video", help="a local file (its folder is allowed), an https URL or a data: URI")
    edit.add_argument("prompt", help="the change you want, e.g. 'black and white, mirrored'")
    edit.add_argument("--provider", choices=ALL_PROVIDERS, help="default: ALEPH_MCP_DEFAULT_PROVIDER")
    edit.add_argument("--model")
    edit.add_argument("--aspect-ratio", choices=ASPECT_RATIOS)
    edit.add_argument("--seed", type=_seed)
    edit.add_argument("--watermark", help="text drawn on the video (kie, local)")
    edit.add_argument("--idempotency-key", help="repeat a call safely: the same key returns the same edit")
    edit.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="start a new (billed) edit even if an identical one was started in the last 10 minutes",
    )
    edit.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=True, help="follow the edit to its end"
    )
    edit.add_argument(
        "--timeout", type=_positive(float), help="stop waiting after this many seconds (exit 3)"
    )


def build_parser() -> argparse.ArgumentParser:
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-level", choices=LEVELS, default=argparse.SUPPRESS, help="logs go to stderr")
    common = argparse.ArgumentParser(add_help=False, parents=[logs])
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")

    parser = argparse.ArgumentParser(
        prog="aleph-mcp",
        description="MCP server for Runway Aleph video edits, and a command line for people and scripts.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aleph-mcp {__version__}")
    parser.add_argument("--log-level", choices=LEVELS, help="default: ALEPH_MCP_LOG_LEVEL or INFO (serve)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", parents=[logs], help="serve MCP over stdio (the default) or --http")
    serve.add_argument("--http", action="store_true", help="serve Streamable HTTP (with sign-in) instead")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for --http (default: loopback)")
    serve.add_argument("--port", type=_positive(int), default=8000, help="port for --http")

    _add_edit(commands, common)

    status = commands.add_parser("status", parents=[common], help="show an edit")
    status.add_argument("edit_id")
    status.add_argument("--wait", action="store_true", help="follow the edit to its end")
    status.add_argument("--timeout", type=_positive(float), help="stop waiting after this many seconds")

    listing = commands.add_parser("list", parents=[common], help="list edits, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--provider", choices=ALL_PROVIDERS)
    listing.add_argument("--limit", type=_positive(int), default=20)
    listing.add_argument("--cursor", help="the next_cursor of the previous page")

    cancel = commands.add_parser("cancel", parents=[common], help="cancel an unfinished edit")
    cancel.add_argument("edit_id")

    opener = commands.add_parser("open", parents=[common], help="print (or --show) an edit's archived video")
    opener.add_argument("edit_id")
    opener.add_argument("--show", action="store_true", help="open it with the desktop's viewer")
    opener.add_argument(
        "--compare",
        action="store_true",
        help="its before/after sheet (input frames above output frames) instead",
    )

    commands.add_parser("doctor", parents=[common], help="check keys, data dir, store and codecs")
    demo = commands.add_parser("demo", parents=[logs], help="an offline edit end to end (no key, no network)")
    demo.add_argument("--data-dir", help="where the clip, store and result go (default: a new temp folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in (None, "serve"):
        return _serve(args)
    gc.enable()  # `python -m aleph_mcp` starts without collections (see _started)
    try:
        return _run(args)
    except BrokenPipeError:  # `aleph-mcp list --json | head`: the reader left; that is not an error to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ERROR


def _serve(args: argparse.Namespace) -> int:
    if getattr(args, "http", False):
        from aleph_mcp.providers import tls

        tls.warm_up()  # the CA certificates load in a thread while the HTTP server is imported and built
    # Over stdio they load at the first request (server/first_use.py): a thread loading them now would
    # only compete with the start-up for the two cores.
    gc.disable()  # until the server is built (see _started)
    try:
        from aleph_mcp.config import load_settings
        from aleph_mcp.errors import InvalidInput
        from aleph_mcp.server import create_server, serve_stdio

        settings = load_settings()
        _configure_logging(args.log_level or settings.log_level)
        server = None if getattr(args, "http", False) else create_server(settings)
    finally:
        _started()
    if server is not None:
        anyio.run(serve_stdio, server)
        return 0
    from aleph_mcp.server.http import serve_http

    try:
        anyio.run(serve_http, settings, args.host, args.port)
    except InvalidInput as exc:  # a configuration that must not serve: say why, in one line
        error_line(exc.message)
        return REFUSED
    return 0


def _started() -> None:
    """Collections back on, once the server is imported and built. The start-up allocates about 150,000
    objects and frees almost none: the cyclic collector's passes over them were about a tenth of the time
    to the first answer. What it made lives as long as the server, so it is frozen (never scanned again,
    which also shortens every later collection); the few cycles it left unreferenced stay with it."""
    gc.freeze()
    gc.enable()


def _run(args: argparse.Namespace) -> int:
    from aleph_mcp.cli.commands import COMMANDS
    from aleph_mcp.config import load_settings
    from aleph_mcp.errors import AlephError, InvalidInput, NotConfigured

    secrets: list[str] = []
    try:
        settings = load_settings()
        secrets = settings.secrets()
        # A person at a terminal wants results, not the poller's INFO lines (unless asked for them).
        configured = "log_level" in settings.model_fields_set
        _configure_logging(args.log_level or (settings.log_level if configured else "WARNING"))
        code: int = anyio.run(COMMANDS[args.command], args, settings)
        return code
    except ValidationError as exc:
        return _fail(args, "configuration", _config_message(exc), ERROR, secrets)
    except CliError as exc:
        return _fail(args, exc.code, exc.message, exc.exit_code, secrets)
    except (InvalidInput, NotConfigured) as exc:
        return _fail(args, exc.code, exc.message, REFUSED, secrets)
    except AlephError as exc:
        return _fail(args, exc.code, exc.message, ERROR, secrets)
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        error_line("interrupted; an edit that was started goes on (see: aleph-mcp list)")
        return INTERRUPTED
    except Exception as exc:  # the one place a surprise becomes a line instead of a traceback
        logger.debug("unexpected error", exc_info=True)
        return _fail(args, "unexpected", f"{type(exc).__name__}: {exc}", ERROR, secrets)


def _config_message(exc: ValidationError) -> str:
    """Which variable is wrong and why, never its value (it may be a key)."""
    parts = [f"ALEPH_MCP_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
    return "configuration error: " + ("; ".join(parts) or str(exc))


def _fail(args: argparse.Namespace, code: str, message: str, exit_code: int, secrets: list[str]) -> int:
    for secret in secrets:
        message = message.replace(secret, "***")
    error_line(message)
    if getattr(args, "json", False):
        emit_json({"error": {"code": code, "message": message}})
    return exit_code
