"""The provider registry: the one list that names every provider, what it can do and how it is set up.

The settings' key and base-URL fields, the provider-name enum, the catalog, doctor and the builder all
derive from PROVIDERS. Adding a provider is one adapter module and one entry here (CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import httpx2

from aleph_mcp.providers import aimlapi, crun, kie, krea, local, runway
from aleph_mcp.providers.base import Capabilities, ModelFacts, Provider, ProviderConfig
from aleph_mcp.providers.hosted import HostedAdapter

Factory = Callable[[httpx2.AsyncClient, ProviderConfig], Provider]


@dataclass(frozen=True)
class UrlSetting:
    """One URL setting: the Settings field `field` (variable ALEPH_MCP_<FIELD>) and its default."""

    field: str
    default: str


@dataclass(frozen=True)
class ProviderSpec:
    """Everything outside its adapter module that needs to know about one provider."""

    name: str
    capabilities: Capabilities
    model_facts: Mapping[str, ModelFacts]  # one per model in capabilities.models
    factory: Factory  # builds the adapter from the config the settings give it
    about: str  # one line for people (doctor)
    key_env: tuple[str, ...] = ()  # variables holding its key: ALEPH_MCP_<P>_API_KEY, then the vendor's
    urls: tuple[UrlSetting, ...] = ()  # the first is its base URL

    @property
    def key_field(self) -> str:
        return f"{self.name}_api_key"

    @property
    def price_keys(self) -> tuple[str, ...]:
        """The ALEPH_MCP_PRICES keys naming it: the provider, or one of its models."""
        return (self.name, *(f"{self.name}/{model}" for model in self.capabilities.models))


def _hosted(
    adapter: type[HostedAdapter],
    facts: Mapping[str, ModelFacts],
    about: str,
    conventional_key: str,
    base_url: str,
    **more_urls: str,
) -> ProviderSpec:
    """A hosted provider's entry: name, capabilities and factory from its adapter class, its key read
    from ALEPH_MCP_<NAME>_API_KEY or the vendor's conventional variable, and its URL settings."""
    name = adapter.name
    urls = (
        UrlSetting(f"{name}_base_url", base_url),
        *(UrlSetting(f"{name}_{role}_base_url", url) for role, url in more_urls.items()),
    )
    key_env = (f"ALEPH_MCP_{name.upper()}_API_KEY", conventional_key)
    return ProviderSpec(name, adapter.capabilities, facts, adapter.from_config, about, key_env, urls)


# The order matters: without ALEPH_MCP_DEFAULT_PROVIDER, the first provider with a key is the default.
PROVIDERS: tuple[ProviderSpec, ...] = (
    _hosted(
        kie.KieProvider,
        kie.MODEL_FACTS,
        "Runway Aleph through kie.ai",
        "KIE_API_KEY",
        "https://api.kie.ai",
        upload="https://kieai.redpandaai.co",
    ),
    _hosted(
        aimlapi.AimlapiProvider,
        aimlapi.MODEL_FACTS,
        "Runway gen4_aleph through AI/ML API",
        "AIMLAPI_API_KEY",
        "https://api.aimlapi.com",
    ),
    _hosted(
        crun.CrunProvider,
        crun.MODEL_FACTS,
        "Runway Gen-4 Aleph through crun.ai",
        "CRUN_API_KEY",
        "https://api.crun.ai",
    ),
    _hosted(
        krea.KreaProvider,
        krea.MODEL_FACTS,
        "Runway Aleph through Krea",
        "KREA_API_KEY",
        "https://api.krea.ai",
    ),
    _hosted(
        runway.RunwayProvider,
        runway.MODEL_FACTS,
        "Runway's own API",
        "RUNWAYML_API_SECRET",
        "https://api.dev.runwayml.com",
    ),
    ProviderSpec(
        local.LocalProvider.name,
        local.CAPABILITIES,
        local.MODEL_FACTS,
        local.LocalProvider.from_config,
        "offline FFmpeg filters",
    ),
)
REGISTRY: Mapping[str, ProviderSpec] = {spec.name: spec for spec in PROVIDERS}

ALL_PROVIDERS: tuple[str, ...] = tuple(REGISTRY)
HOSTED_PROVIDERS: tuple[str, ...] = tuple(s.name for s in PROVIDERS if s.capabilities.needs_key)
# Used when no provider has a key: the first that needs none.
KEYLESS_DEFAULT: str = next(s.name for s in PROVIDERS if not s.capabilities.needs_key)

if TYPE_CHECKING:
    ProviderName = str  # mypy cannot read a Literal built at run time
else:
    ProviderName = Literal[ALL_PROVIDERS]  # pydantic, argparse and the tool schemas see the enum


def _check(specs: tuple[ProviderSpec, ...]) -> None:
    """Mistakes in an entry fail at import, not in front of a user."""
    names = [s.name for s in specs]
    problems = [f"duplicate provider names in {names}"] if len(set(names)) != len(names) else []
    for spec in specs:
        if spec.capabilities.needs_key != bool(spec.key_env):
            problems.append(f"{spec.name}: key_env must be given exactly when needs_key is set")
        if set(spec.model_facts) != set(spec.capabilities.models):
            problems.append(f"{spec.name}: model_facts must cover exactly its models")
        if spec.capabilities.needs_key and not spec.urls:
            problems.append(f"{spec.name}: a hosted provider needs a base URL setting")
        bad = [u.field for u in spec.urls if not u.field.startswith(f"{spec.name}_")]
        problems += [f"{spec.name}: URL setting {field} must start with {spec.name}_" for field in bad]
    if problems:
        raise ValueError("; ".join(problems))


_check(PROVIDERS)


def capabilities_of(name: str | None) -> Capabilities | None:
    spec = REGISTRY.get(name) if name else None
    return spec.capabilities if spec is not None else None


def check_price_key(key: str) -> None:
    """A price override key is "provider" or "provider/model" naming a real one (raises ValueError)."""
    provider, _, model = key.partition("/")
    spec = REGISTRY.get(provider)
    if spec is None:
        raise ValueError(f"price key {key!r}: unknown provider; use one of {', '.join(ALL_PROVIDERS)}")
    if model and key not in spec.price_keys:
        models = ", ".join(spec.capabilities.models)
        raise ValueError(f"price key {key!r}: {provider} has the models {models}")


class ConfigSource(Protocol):
    """Where provider configs come from (config.Settings); a protocol so providers/ never imports it."""

    def provider_config(self, name: str) -> ProviderConfig | None: ...


def build_providers(source: ConfigSource, client: httpx2.AsyncClient) -> dict[str, Provider]:
    """Every provider the source configures (hosted ones need a key; keyless ones always are)."""
    built: dict[str, Provider] = {}
    for spec in PROVIDERS:
        config = source.provider_config(spec.name)
        if config is not None:
            built[spec.name] = spec.factory(client, config)
    return built
