"""Fuzzing every tool and argument, and resource URIs, through the in-memory MCP client (hypothesis).

Whatever arrives, the answer is a valid result or a tool error that says something useful; never an
internal error, never a crashed server, and a refused call never sends anything to a provider.
"""

from __future__ import annotations

import re
import string
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import mcp.types as types
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError

from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FakeAPI, Fault
from .fakes.kie import FakeKie
from .fakes.krea import FakeKrea
from .fakes.runway import FakeRunway
from .media import make_clip

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
INTERNAL = re.compile(r"Error executing tool [\w-]+:?\s*")
HEX = st.text(alphabet="0123456789abcdef", min_size=20, max_size=20)


@dataclass
class Target:
    """A served aleph-mcp with three fake providers, a few edits of every kind, and a real clip."""

    client: Client
    fakes: dict[str, FakeAPI]
    tools: dict[str, types.Tool]
    ids: list[str]  # existing edits: failed, cancelled (terminal) and one queued krea edit
    clip: Path
    outside: Path

    def provider_writes(self) -> int:
        """Requests that could cost money or move data: anything but a status read, at any provider."""
        return sum(1 for fake in self.fakes.values() for r in fake.requests if r.method != "GET")


def dispatcher(fakes: dict[str, FakeAPI]) -> httpx2.MockTransport:
    """One transport for every host: each fake on its own host; input URLs probed elsewhere get a 404."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        fake = fakes.get(request.url.host.split(".")[0])
        return fake(request) if fake is not None else httpx2.Response(404)

    return httpx2.MockTransport(handle)


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[Target]:
    inputs = tmp_path / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    clip = make_clip(inputs / "clip.mp4")
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"not yours")
    fakes: dict[str, FakeAPI] = {
        "runway": FakeRunway(TEST_KEY, steps=("queued",)),
        "krea": FakeKrea(TEST_KEY, steps=("queued",)),
        "kie": FakeKie(TEST_KEY, steps=("queued",)),
    }
    async with httpx2.AsyncClient(transport=dispatcher(fakes)) as http:
        providers: dict[str, Any] = {
            "runway": RunwayProvider(http, api_key=TEST_KEY, base_url="http://runway.invalid"),
            "krea": KreaProvider(http, api_key=TEST_KEY, base_url="http://krea.invalid"),
            "kie": KieProvider(
                http, api_key=TEST_KEY, base_url="http://kie.invalid", upload_base_url="http://kie.invalid"
            ),
        }
        keys = {f"{name}_api_key": TEST_KEY for name in providers}
        # No polling while fuzzing: the poller's jitter draws from `random`, which hypothesis must own.
        config = make_settings(
            tmp_path, default_provider="runway", poll_interval=3600, poll_max_interval=3600, **keys
        )
        server = create_server(config, providers=providers, store=InMemoryEditStore(), http=http)
        async with Client(server) as client:
            ids = await seed_edits(client, fakes)
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            yield Target(client, fakes, tools, ids, clip, outside)


async def seed_edits(client: Client, fakes: dict[str, FakeAPI]) -> list[str]:
    """One failed edit, one cancelled, one queued: ids worth fuzzing with."""
    fakes["kie"].inject(Fault(kind="create", status=200, body={"code": 422, "msg": "bad", "data": None}))
    await client.call_tool(
        "edit_video", {"prompt": "seed failed", "video": "https://cdn.example.com/a.mp4", "provider": "kie"}
    )
    ids = []
    for prompt in ("seed cancelled", "seed queued"):
        args = {"prompt": prompt, "video": "https://cdn.example.com/b.mp4", "provider": "krea"}
        result = await client.call_tool("edit_video", args)
        assert result.structured_content is not None, result.content
        ids.append(result.structured_content["edit_id"])
    await client.call_tool("cancel_edit", {"edit_id": ids[0]})
    listed = (await client.call_tool("list_edits", {})).structured_content
    assert listed is not None
    return [e["edit_id"] for e in listed["edits"]]


@contextmanager
def portal_target(tmp_path: Path) -> Iterator[tuple[BlockingPortal, Target]]:
    """The server runs on an event loop in a thread; hypothesis drives it from this (sync) test."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(served(tmp_path)) as target:
        yield portal, target


# -- strategies -----------------------------------------------------------------------------------
# A call starts from plausible arguments, then up to two are replaced by wild values and one may be
# dropped: deep enough to reach the service and the providers, wild enough to hit every check.

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
SHORT_WAITS = st.one_of(st.sampled_from([0, 0.01, -1, -0.0, 51, 1e308, "1", None]), st.floats(max_value=0.05))


def wild_inputs(target: Target) -> st.SearchStrategy[str]:
    """video / reference_image: every form the argument takes, valid or not."""
    return st.one_of(
        st.sampled_from(
            [
                "https://cdn.example.com/in/style.png",
                "http://cdn.example.com/in/clip.mp4",
                "ftp://cdn.example.com/clip.mp4",
                "https://",
                "https://cdn.example.com/" + "a" * 2100,
                "https://cdn.example.com/a\x04b.mp4",
                "https://cdn.example.com/a b.mp4",
                "data:image/png;base64,iVBORw0KGgo=",
                "data:video/mp4;base64,not*base64!",
                "data:video/mp4,plain",
                "data:;base64,",
                f"file://{target.clip}",
                str(target.clip.parent),
                str(target.outside),
                f"{target.clip.parent}/../secret.mp4",
                "clip.mp4",
                "~/clip.mp4",
                "/dev/null",
                "",
                " ",
                "\x00",
            ]
        ),
        st.builds(lambda s: "https://cdn.example.com/" + s, TEXT),
        st.builds(
            lambda s: "data:video/mp4;base64," + s,
            st.text(alphabet=string.ascii_letters + "+/=", max_size=60),
        ),
        TEXT,
    )


def plausible(name: str, schema: dict[str, Any], target: Target) -> st.SearchStrategy[Any]:
    """A value a careful agent might send."""
    video = st.sampled_from(
        ["https://cdn.example.com/in/clip.mp4", "data:video/mp4;base64,AAAAGGZ0eXBtcDQy", str(target.clip)]
    )
    values: dict[str, st.SearchStrategy[Any]] = {
        "prompt": st.one_of(
            st.sampled_from(["make it snow", "golden hour"]), st.text(min_size=1, max_size=80)
        ),
        "video": video,
        "reference_image": st.one_of(st.none(), st.just("https://cdn.example.com/in/style.png")),
        "provider": st.sampled_from([None, "runway", "krea", "kie"]),
        "model": st.none(),
        "aspect_ratio": st.sampled_from([None, "16:9", "9:16", "1:1"]),
        "seed": st.one_of(st.none(), st.integers(min_value=0, max_value=4_294_967_295)),
        "watermark": st.none(),
        "idempotency_key": st.one_of(st.none(), st.text(min_size=1, max_size=20)),
        "edit_id": st.sampled_from(target.ids),
        "wait_seconds": st.sampled_from([0, 0.01]),
        "status": st.sampled_from([None, "queued", "failed", "succeeded"]),
        "limit": st.integers(min_value=1, max_value=100),
        "cursor": st.none(),
    }
    return values.get(name, typed(schema))


def wild(name: str, schema: dict[str, Any], target: Target) -> st.SearchStrategy[Any]:
    """Anything at all for this argument, with the values that matter for its name."""
    if name == "wait_seconds":
        return SHORT_WAITS  # valid waits on unfinished edits would only make the run slow
    special: dict[str, st.SearchStrategy[Any]] = {
        "video": wild_inputs(target),
        "reference_image": wild_inputs(target),
        "edit_id": st.one_of(st.builds(lambda h: f"ed_{h}", HEX), TEXT, st.just("")),
        "provider": st.sampled_from(["aimlapi", "crun", "local", "sora", "", "RUNWAY"]),
        "model": st.sampled_from(["aleph2", "gen4_aleph", "aleph", "gen-4-aleph", "gen5", ""]),
        "cursor": st.one_of(
            TEXT, st.sampled_from(["MTAwMHxlZF8x", "bm90IGEgY3Vyc29y", "====", "MXx8", "bmFufGVk"])
        ),
        "prompt": st.one_of(TEXT, st.sampled_from(["", "   ", "🎬" * 600, "x" * 1001, "x" * 10_001])),
    }
    options = [typed(schema), GARBAGE]
    return st.one_of([special[name], *options] if name in special else options)


def typed(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the schema's own types, around and across their bounds."""
    if "anyOf" in schema:
        return st.one_of([typed(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.one_of(TEXT, st.text(min_size=190, max_size=260))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -(2**33)), schema.get("maximum", 2**33)
        ints = st.integers(min_value=int(low) - 3, max_value=int(high) + 3)
        return ints if kind == "integer" else st.one_of(ints, st.floats(allow_nan=True, allow_infinity=True))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return GARBAGE


def arguments(tool: types.Tool, target: Target) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    if not properties:
        return st.dictionaries(st.sampled_from(["unknown", "edit_id"]), GARBAGE, max_size=2)
    names = sorted(properties)
    base = st.fixed_dictionaries({name: plausible(name, properties[name], target) for name in names})
    changes = st.lists(st.sampled_from([*names, "unknown"]), max_size=2, unique=True).flatmap(
        lambda picked: st.fixed_dictionaries(
            {n: wild(n, properties.get(n, {}), target) if n in properties else GARBAGE for n in picked}
        )
    )
    dropped = st.one_of(
        st.just(set[str]()), st.just(set[str]()), st.sets(st.sampled_from(names), min_size=1, max_size=1)
    )
    return st.builds(_call, base, changes, dropped)


def _call(base: dict[str, Any], changes: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    """Plausible values, a few replaced by wild ones, maybe one left out; `None` for an optional
    argument means leaving it out, as a client would."""
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if k not in dropped and (v is not None or k in changes)}


# -- checks ---------------------------------------------------------------------------------------


def check_answer(target: Target, tool: types.Tool, result: types.CallToolResult, writes_before: int) -> None:
    if result.is_error:
        text = " ".join(block.text for block in result.content if isinstance(block, types.TextContent))
        assert not INTERNAL.fullmatch(text), f"internal error from {tool.name}: {text!r}"
        assert len(text) > len(f"Error executing tool {tool.name}: ") + 10, text
        assert target.provider_writes() == writes_before, f"{tool.name} refused but sent something: {text}"
    else:
        assert result.structured_content is not None, result.content
        if tool.output_schema is not None:
            jsonschema.validate(result.structured_content, tool.output_schema)
    blob = repr(result.model_dump())
    assert TEST_KEY not in blob


def fuzz_tool(
    tmp_path: Path, name: str, known: Callable[[Target], list[dict[str, Any]]] = lambda _: []
) -> None:
    """Fuzz one tool; `known` gives calls that once went wrong, always tried first."""
    with portal_target(tmp_path) as (portal, target):
        tool = target.tools[name]

        def one_call(args: dict[str, Any]) -> None:
            before = target.provider_writes()
            result = portal.call(target.client.call_tool, name, args)
            check_answer(target, tool, result, before)

        test = given(args=arguments(tool, target))(one_call)
        for args in known(target):
            test = example(args=args)(test)
        FUZZ(test)()
        # Still serving, and still consistent after all of that.
        listed = portal.call(target.client.call_tool, "list_edits", {"limit": 100})
        assert not listed.is_error and listed.structured_content is not None


def test_edit_video_answers_every_fuzzed_call_with_a_result_or_a_useful_error(tmp_path: Path) -> None:
    """Every argument of edit_video fuzzed: no internal errors, and no provider request when refused."""
    fuzz_tool(tmp_path, "edit_video", edit_video_regressions)


def edit_video_regressions(target: Target) -> list[dict[str, Any]]:
    return [
        # A control character in a URL crashed the pre-flight probe (httpx2.InvalidURL).
        {"prompt": "snow", "video": "https://cdn.example.com/a\x04b.mp4"},
        {"prompt": "snow", "video": "https://cdn.example.com/in.mp4", "reference_image": "https://x.io/\x7f"},
        # aleph2 takes no reference image: the clip was uploaded to Runway before the adapter said so.
        {
            "prompt": "snow",
            "video": str(target.clip),
            "reference_image": "https://cdn.example.com/in/style.png",
        },
    ]


def test_get_edit_status_answers_every_fuzzed_call_with_a_result_or_a_useful_error(tmp_path: Path) -> None:
    """edit_id and wait_seconds fuzzed (waits kept short): a record or a useful error."""
    fuzz_tool(tmp_path, "get_edit_status")


def test_list_edits_answers_every_fuzzed_call_with_a_result_or_a_useful_error(tmp_path: Path) -> None:
    """status, provider, limit and cursor fuzzed: a page or a useful error."""
    fuzz_tool(tmp_path, "list_edits")


def test_cancel_edit_answers_every_fuzzed_call_with_a_result_or_a_useful_error(tmp_path: Path) -> None:
    """edit_id fuzzed, existing edits of every state included: a record or a useful error."""
    fuzz_tool(tmp_path, "cancel_edit")


def test_every_other_tool_answers_fuzzed_calls_with_a_result_or_a_useful_error(tmp_path: Path) -> None:
    """Tools added later are fuzzed from their input schemas too."""
    known = {"edit_video", "get_edit_status", "list_edits", "cancel_edit"}
    with portal_target(tmp_path) as (_, target):
        others = sorted(set(target.tools) - known)
    for name in others:
        fuzz_tool(tmp_path / name, name)


def resource_uris(target: Target) -> st.SearchStrategy[str]:
    real = [
        f"aleph://edits/{edit_id}{tail}" for edit_id in target.ids for tail in ("", "/video", "/thumbnail")
    ]
    return st.one_of(
        st.sampled_from(
            [
                *real,
                "aleph://edits/",
                "aleph://edits",
                "aleph://edits/../../etc/passwd",
                "aleph://edits/%2e%2e%2fsecret",
                "aleph://edits/ed_x/video/extra",
                "file:///etc/passwd",
                "https://cdn.example.com/x",
                "",
                "aleph://",
            ]
        ),
        st.builds(
            lambda h, t: f"aleph://edits/ed_{h}{t}", HEX, st.sampled_from(["", "/video", "/thumbnail"])
        ),
        st.builds(lambda s: f"aleph://edits/{s}", TEXT),
        st.builds(lambda s: f"aleph://edits/{s}/video", TEXT),
        TEXT,
    )


def test_resource_reads_of_fuzzed_uris_answer_with_contents_or_a_proper_mcp_error(tmp_path: Path) -> None:
    """Malformed, unknown and real URIs: contents, or an MCPError with a message, never a crash."""
    with portal_target(tmp_path) as (portal, target):

        @FUZZ
        @given(uri=resource_uris(target))
        def one_read(uri: str) -> None:
            try:
                result = portal.call(target.client.read_resource, uri)
            except MCPError as exc:
                failure = exc.error.message
            else:
                assert result.contents
                return
            assert failure and not failure.startswith("Error reading resource"), failure

        one_read()
        assert portal.call(target.client.list_resources) is not None
