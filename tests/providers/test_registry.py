"""The provider registry: one entry per provider, and everything that derives from it."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import get_args

import httpx2
import pytest
from pydantic import AliasChoices

from aleph_mcp.config import Settings
from aleph_mcp.pricing.catalog import ADAPTERS, MODEL_FACTS
from aleph_mcp.providers import build_providers
from aleph_mcp.providers.base import ProviderConfig
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.registry import (
    ALL_PROVIDERS,
    HOSTED_PROVIDERS,
    PROVIDERS,
    REGISTRY,
    ProviderName,
    _check,
    check_price_key,
)
from tests.conftest import make_settings

SRC = Path(__file__).resolve().parents[2] / "src" / "aleph_mcp"


def test_the_registry_lists_every_provider_in_default_order() -> None:
    """kie, aimlapi, crun, krea, runway, then local; only local needs no key."""
    assert ALL_PROVIDERS == ("kie", "aimlapi", "crun", "krea", "runway", "local")
    assert ALL_PROVIDERS[:-1] == HOSTED_PROVIDERS
    assert get_args(ProviderName) == ALL_PROVIDERS


def test_each_entry_matches_its_adapter() -> None:
    """An entry's name and capabilities are its adapter's; its facts cover exactly its models."""
    for spec in PROVIDERS:
        assert set(spec.model_facts) == set(spec.capabilities.models), spec.name
        assert spec.price_keys == (spec.name, *(f"{spec.name}/{m}" for m in spec.capabilities.models))
    assert {spec.name: spec.capabilities for spec in PROVIDERS} == ADAPTERS
    assert set(MODEL_FACTS) == {key for spec in PROVIDERS for key in spec.price_keys if "/" in key}


def test_the_provider_settings_are_generated_from_the_registry() -> None:
    """Every *_api_key and *_base_url field comes from an entry, with the entry's variables and defaults."""
    generated = {f for f in Settings.model_fields if f.endswith(("_api_key", "_base_url"))}
    expected = {s.key_field for s in PROVIDERS if s.key_env} | {u.field for s in PROVIDERS for u in s.urls}
    assert generated == expected
    for spec in PROVIDERS:
        for url in spec.urls:
            assert Settings.model_fields[url.field].default == url.default
        if spec.key_env:
            alias = Settings.model_fields[spec.key_field].validation_alias
            assert isinstance(alias, AliasChoices) and tuple(alias.choices) == spec.key_env


async def test_build_providers_builds_the_keyed_ones_and_the_keyless_ones(tmp_path: Path) -> None:
    """Only providers with a key are built (plus local), each from its settings: URLs, key, timeout."""
    settings = make_settings(
        tmp_path,
        kie_api_key="kie-key-0123456789",
        kie_base_url="http://127.0.0.1:9/kie/",
        kie_upload_base_url="http://127.0.0.1:9/up/",
        request_timeout=7.0,
    )
    async with httpx2.AsyncClient() as client:
        built = build_providers(settings, client)
    assert list(built) == ["kie", "local"]
    kie = built["kie"]
    assert isinstance(kie, KieProvider)
    assert (kie.http.base_url, kie.upload_base_url, kie.http.timeout) == (
        "http://127.0.0.1:9/kie",
        "http://127.0.0.1:9/up",
        7.0,
    )
    assert kie.http.secrets == ("kie-key-0123456789",)
    assert all(built[name].capabilities is REGISTRY[name].capabilities for name in built)


def test_a_provider_config_never_prints_its_key(tmp_path: Path) -> None:
    """The config handed to factories may be logged; its key is not in its repr."""
    config = make_settings(tmp_path, runway_api_key="rw-secret-0123456789").provider_config("runway")
    assert isinstance(config, ProviderConfig) and config.api_key == "rw-secret-0123456789"
    assert "rw-secret" not in repr(config)
    assert make_settings(tmp_path).provider_config("runway") is None


@pytest.mark.parametrize("key", ["kie", "runway/aleph2", "local/ffmpeg", "crun/gen-4-aleph"])
def test_price_keys_naming_a_provider_or_its_model_are_accepted(key: str) -> None:
    check_price_key(key)


@pytest.mark.parametrize(
    ("key", "says"), [("sora", "unknown provider"), ("runway/gen3", "runway has the models aleph2")]
)
def test_other_price_keys_are_refused_with_the_choices(key: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_price_key(key)


def test_a_malformed_entry_fails_at_import() -> None:
    """A hosted entry without key variables, or facts missing a model, is refused by name."""
    kie = REGISTRY["kie"]
    with pytest.raises(ValueError, match="kie: key_env"):
        _check((replace(kie, key_env=()),))
    with pytest.raises(ValueError, match="kie: model_facts"):
        _check((replace(kie, model_facts={}),))
    with pytest.raises(ValueError, match="duplicate"):
        _check((kie, kie))


def test_settings_import_neither_the_catalog_nor_pyav() -> None:
    """config reads the registry, not the pricing catalog (no import circle), and loads no renderer."""
    code = (
        "import sys, aleph_mcp.config; print(sorted({'aleph_mcp.pricing.catalog', 'av'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_code_outside_an_adapter_asks_for_a_provider_by_name() -> None:
    """Behaviour follows Capabilities: comparisons with "local" live in the local adapter only."""
    pattern = re.compile(r"""[!=]=\s*["']local["']""")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if path.name != "local.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
