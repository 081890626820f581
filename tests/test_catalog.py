"""The provider catalog: list_providers, prices from prices.json and ALEPH_MCP_PRICES, and quotes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from pydantic import ValidationError

from aleph_mcp.config import ALL_PROVIDERS, PriceOverride, Settings
from aleph_mcp.pricing.catalog import ADAPTERS, MODEL_FACTS, price_table, quote
from aleph_mcp.providers import aimlapi, crun, kie, krea, local, runway
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway

MODULES = {"kie": kie, "aimlapi": aimlapi, "crun": crun, "krea": krea, "runway": runway, "local": local}


@asynccontextmanager
async def catalog_client(tmp_path: Path, fake: FakeRunway, **settings: Any) -> AsyncIterator[Client]:
    """An in-process client against a server whose only hosted provider is Runway (talking to `fake`)."""
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        config = make_settings(tmp_path, runway_api_key=TEST_KEY, **settings)
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url="http://fake.invalid")
        server = create_server(config, providers={"runway": provider}, store=InMemoryEditStore(), http=http)
        async with Client(server) as client:
            yield client


async def list_providers(client: Client) -> dict[str, dict[str, Any]]:
    result = await client.call_tool("list_providers", {})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return {p["name"]: p for p in result.structured_content["providers"]}


async def test_list_providers_is_read_only_and_publishes_an_output_schema(tmp_path: Path) -> None:
    """tools/list shows list_providers with a read-only hint and a schema naming its fields."""
    async with catalog_client(tmp_path, FakeRunway(TEST_KEY)) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "list_providers")
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.output_schema is not None and "providers" in tool.output_schema["properties"]


async def test_configured_flags_follow_the_keys_and_the_key_never_appears(tmp_path: Path) -> None:
    """Only runway (keyed) and local are configured; the key is in neither the text nor the structure."""
    fake = FakeRunway(TEST_KEY)
    async with catalog_client(tmp_path, fake) as client:
        result = await client.call_tool("list_providers", {})
        providers = await list_providers(client)
    configured = {name for name, p in providers.items() if p["configured"]}
    assert configured == {"runway", "local"}
    assert list(providers) == list(ALL_PROVIDERS)
    assert providers["runway"]["default"] is True and providers["kie"]["default"] is False
    everything = json.dumps(result.structured_content) + "".join(str(block) for block in result.content)
    assert TEST_KEY not in everything
    assert fake.requests == []  # listing asks no provider anything


async def test_capabilities_and_limits_come_from_each_adapter(tmp_path: Path) -> None:
    """Models, ratios, limits and abilities match the adapter modules' CAPABILITIES exactly."""
    async with catalog_client(tmp_path, FakeRunway(TEST_KEY)) as client:
        providers = await list_providers(client)
    for name, module in MODULES.items():
        caps, listed = module.CAPABILITIES, providers[name]
        assert [m["name"] for m in listed["models"]] == list(caps.models)
        assert set(listed["aspect_ratios"]) == set(caps.aspect_ratios)
        assert listed["limits"]["max_prompt_chars"] == caps.max_prompt_chars
        assert listed["limits"]["data_uri_max_bytes"] == caps.data_uri_max_bytes
        assert listed["can"]["cancel"] is caps.can_cancel
        assert listed["can"]["watermark"] is caps.watermark
        assert listed["can"]["seed"] is caps.seed
        assert listed["typical_render"] == caps.typical_render
    assert (
        providers["crun"]["can"]["upload"] is False
        and providers["crun"]["limits"]["upload_max_bytes"] is None
    )
    assert providers["runway"]["limits"]["upload_max_bytes"] == 200 * 1024 * 1024
    assert providers["runway"]["limits"]["max_url_input_bytes"] == 32 * 1024 * 1024
    aleph2, gen4 = providers["runway"]["models"]
    assert (aleph2["reference_image"], gen4["reference_image"]) == (False, True)


async def test_unknown_prices_are_null_and_first_party_prices_carry_source_and_date(tmp_path: Path) -> None:
    """kie, aimlapi, crun, krea and aleph2 are unknown; gen4_aleph is $0.15/s dated; local is free."""
    async with catalog_client(tmp_path, FakeRunway(TEST_KEY)) as client:
        providers = await list_providers(client)
    models = {f"{p}/{m['name']}": m for p, info in providers.items() for m in info["models"]}
    for key in ("kie/aleph", "aimlapi/gen4_aleph", "crun/gen-4-aleph", "krea/aleph", "runway/aleph2"):
        assert models[key]["price"]["usd"] is None and models[key]["edit_usd"] is None, key
        assert models[key]["price"]["source"], key
    gen4 = models["runway/gen4_aleph"]
    assert gen4["price"]["usd"] == 0.15 and gen4["price"]["per"] == "second"
    assert gen4["price"]["as_of"] == "2026-04" and "runwayml/skills" in gen4["price"]["source"]
    assert "$0.01 per API credit" in gen4["price"]["inferred"]
    assert gen4["edit_usd"] == 0.75
    assert models["runway/aleph2"]["price"]["third_party"][0]["usd"] == 0.28
    assert models["local/ffmpeg"]["edit_usd"] == 0


def test_gen4_aleph_is_billed_per_second_up_to_the_five_seconds_it_processes() -> None:
    """3 s costs $0.45; a 12 s clip and a clip of unknown length cost the 5 s cap, $0.75."""
    short = quote("runway", "gen4_aleph", 3.0)
    assert (short.usd, short.billed_seconds, short.known) == (0.45, 3.0, True)
    long = quote("runway", "gen4_aleph", 12.0)
    assert (long.usd, long.billed_seconds) == (0.75, 5.0)
    assert "first 5 s of the 12 s input" in long.basis
    unknown = quote("runway", "gen4_aleph", None)
    assert unknown.usd == 0.75 and "input length unknown" in unknown.basis
    assert unknown.as_of == "2026-04" and unknown.inferred is not None


def test_unknown_prices_quote_as_unknown_and_never_use_third_party_figures() -> None:
    """aleph2 (the default Runway model) and kie quote None with known False; local quotes 0."""
    aleph2 = quote("runway", None, 10.0)
    assert (aleph2.model, aleph2.usd, aleph2.known) == ("aleph2", None, False)
    assert "$0.28/second" in aleph2.basis and "not used" in aleph2.basis
    assert quote("kie", "aleph", 4.0).usd is None
    free = quote("local", None, 120.0)
    assert (free.usd, free.known) == (0.0, True)


def test_a_user_price_in_the_environment_changes_quotes(monkeypatch: pytest.MonkeyPatch) -> None:
    """ALEPH_MCP_PRICES sets per-second and per-edit prices; the quote says the figure is the user's."""
    monkeypatch.setenv("ALEPH_MCP_PRICES", '{"runway/aleph2": {"usd": 0.3, "per": "second"}, "kie": 0.6}')
    prices = Settings(_env_file=None).prices
    aleph2 = quote("runway", "aleph2", 7.0, overrides=prices)
    assert (aleph2.usd, aleph2.origin, aleph2.billed_seconds) == (2.1, "user", 7.0)
    assert aleph2.source == "ALEPH_MCP_PRICES['runway/aleph2']"
    assert quote("runway", "aleph2", 45.0, overrides=prices).usd == 9.0  # only the first 30 s are used
    unknown_length = quote("runway", "aleph2", None, overrides=prices)
    assert unknown_length.usd is None and "length is unknown" in unknown_length.basis
    kie_quote = quote("kie", None, 4.0, overrides=prices)
    assert (kie_quote.usd, kie_quote.basis) == (0.6, "$0.60 per edit")


async def test_a_user_price_shows_in_list_providers(tmp_path: Path) -> None:
    """An override replaces the catalog's unknown with the user's figure, marked origin user."""
    fake = FakeRunway(TEST_KEY)
    async with catalog_client(tmp_path, fake, prices={"krea/aleph": 0.5}) as client:
        providers = await list_providers(client)
    price = providers["krea"]["models"][0]["price"]
    assert (price["usd"], price["per"], price["origin"]) == (0.5, "edit", "user")
    assert providers["krea"]["models"][0]["edit_usd"] == 0.5


@pytest.mark.parametrize(
    "prices",
    [{"runwayy": 1}, {"runway/aleph3": 1}, {"kie": -1}, {"kie": True}, {"kie": {"usd": 1, "per": "minute"}}],
)
def test_a_bad_price_override_is_refused_at_startup(tmp_path: Path, prices: dict[str, Any]) -> None:
    """Unknown providers or models, negative prices, booleans and unknown units fail loudly."""
    with pytest.raises(ValidationError):
        make_settings(tmp_path, prices=prices)


def test_quotes_refuse_unknown_models_and_negative_lengths() -> None:
    """A typo in provider or model, or a negative duration, is an error rather than a silent None."""
    from aleph_mcp.errors import InvalidInput

    for args in (("runway", "aleph3", 5.0), ("nope", None, 5.0), ("runway", "gen4_aleph", -1.0)):
        with pytest.raises(InvalidInput):
            quote(*args)


def test_prices_json_ships_in_the_package_and_covers_every_model() -> None:
    """prices.json loads via importlib.resources; every adapter model has a price with a source and facts."""
    raw = json.loads(resources.files("aleph_mcp.pricing").joinpath("prices.json").read_text(encoding="utf-8"))
    assert raw["currency"] == "USD" and raw["checked"]
    table = price_table()
    expected = {f"{p}/{m}" for p, caps in ADAPTERS.items() for m in caps.models}
    assert set(table.prices) == expected == set(MODEL_FACTS)
    assert all(entry.source for entry in table.prices.values())
    assert [k for k, e in table.prices.items() if e.usd is not None] == ["runway/gen4_aleph", "local/ffmpeg"]
    assert PriceOverride(usd=1).per == "edit"
