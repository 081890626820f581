"""Settings: the only place that reads the environment (and an env file the operator chose).

Settings come from the process environment, and from an env file only at an explicit path
(`ALEPH_MCP_ENV_FILE`) or at `aleph-mcp.env` in the user's config directory. A `.env` in whatever folder the
server starts in is never read: an MCP client may start it inside a project someone else wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["kie", "aimlapi", "crun", "krea", "runway", "local"]
HOSTED_PROVIDERS: tuple[ProviderName, ...] = ("kie", "aimlapi", "crun", "krea", "runway")
ALL_PROVIDERS: tuple[ProviderName, ...] = (*HOSTED_PROVIDERS, "local")


class PriceOverride(BaseModel):
    """A user's price for one provider (or provider/model): `usd` per edit, or per second of video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: float = Field(ge=0, allow_inf_nan=False)
    per: Literal["edit", "second"] = "edit"


def _key(provider: str, conventional: str) -> SecretStr | None:
    return Field(
        default=None,
        validation_alias=AliasChoices(f"ALEPH_MCP_{provider}_API_KEY", conventional),
    )


class Settings(BaseSettings):
    """Server configuration; every field maps to an `ALEPH_MCP_*` variable (see README)."""

    # env_ignore_empty: a blank line like `ALEPH_MCP_KIE_API_KEY=` in a .env template or client config means
    # "not set", so it neither shadows KIE_API_KEY nor turns into data_dir "." or an invalid provider name.
    model_config = SettingsConfigDict(
        env_prefix="ALEPH_MCP_",
        env_file=None,  # see load_settings: never a .env of the working directory
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("aleph-mcp")))
    default_provider: ProviderName | None = None

    kie_api_key: SecretStr | None = _key("KIE", "KIE_API_KEY")
    aimlapi_api_key: SecretStr | None = _key("AIMLAPI", "AIMLAPI_API_KEY")
    crun_api_key: SecretStr | None = _key("CRUN", "CRUN_API_KEY")
    krea_api_key: SecretStr | None = _key("KREA", "KREA_API_KEY")
    runway_api_key: SecretStr | None = _key("RUNWAY", "RUNWAYML_API_SECRET")

    kie_base_url: str = "https://api.kie.ai"
    kie_upload_base_url: str = "https://kieai.redpandaai.co"
    aimlapi_base_url: str = "https://api.aimlapi.com"
    crun_base_url: str = "https://api.crun.ai"
    krea_base_url: str = "https://api.krea.ai"
    runway_base_url: str = "https://api.dev.runwayml.com"

    # Renders take 2-15 minutes: start at 5 s (Runway's floor), back off to 60 s.
    poll_interval: float = Field(default=5.0, gt=0)
    poll_max_interval: float = Field(default=60.0, gt=0)
    poll_concurrency: int = Field(default=4, ge=1, le=64)
    # Krea fails external jobs after 2 h; nobody should wait longer than that.
    edit_timeout: float = Field(default=7200.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    allowed_dirs: str = ""
    # The same as a JSON list, for folders whose names hold the path separator (`:` on POSIX).
    allowed_dir_list: list[Path] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Larger videos are not sent through MCP as base64; the reader gets the path and URL instead.
    max_resource_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    # Pre-flight HEAD/range reads of input URLs from this machine; off where nothing may fetch them from here.
    probe_urls: bool = True
    # UNSAFE, for tests and closed networks only: lets fetches (probes, results) reach private, loopback and
    # link-local addresses. Off, only configured provider base URLs may be such addresses.
    allow_private_urls: bool = False
    # ALEPH_MCP_PRICES='{"runway/aleph2": {"usd": 0.3, "per": "second"}, "kie": 0.6}', a JSON object: keys are
    # "provider" or "provider/model"; values USD per edit, or {"usd": ..., "per": "edit" | "second"}.
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    # Spending guards (README "Cost and safety"): caps on the last 24 hours' estimated spend and on its
    # number of billable edits, checked before anything is sent; and the estimate above which edit_video
    # asks the person first. None: no cap / never ask.
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    budget_edits: int | None = Field(default=None, ge=0)
    confirm_above_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # True: above the threshold only a person's answer starts an edit; confirm=true from a client that
    # cannot ask is refused too.
    confirm_requires_person: bool = False

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # MCP clients pass env values without a shell, so "~/videos" arrives unexpanded.
        return value.expanduser()

    @field_validator("default_provider", mode="before")
    @classmethod
    def _normalise_provider(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("prices", mode="before")
    @classmethod
    def _price_shorthand(cls, value: object) -> object:
        # A bare number is USD per edit; bools are numbers to Python but never a price.
        if not isinstance(value, dict):
            return value
        return {
            key: {"usd": price} if isinstance(price, int | float) and not isinstance(price, bool) else price
            for key, price in value.items()
        }

    @field_validator("prices")
    @classmethod
    def _known_price_keys(cls, value: dict[str, PriceOverride]) -> dict[str, PriceOverride]:
        from aleph_mcp.pricing.catalog import check_price_key  # lazy: the catalog imports the adapters

        for key in value:
            check_price_key(key)
        return value

    @field_validator("kie_api_key", "aimlapi_api_key", "crun_api_key", "krea_api_key", "runway_api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    def api_key(self, provider: str) -> str | None:
        secret: SecretStr | None = getattr(self, f"{provider}_api_key", None)
        return secret.get_secret_value().strip() if secret is not None else None

    def base_url(self, provider: str) -> str:
        url: str = getattr(self, f"{provider}_base_url")
        return url.rstrip("/")

    def provider_origins(self) -> list[str]:
        """Every configured provider base URL (kie's upload host too): the origins results may come from."""
        return [*(self.base_url(p) for p in HOSTED_PROVIDERS), self.kie_upload_base_url.rstrip("/")]

    def secrets(self) -> list[str]:
        """Every configured key, for scrubbing text that might echo one."""
        return [key for p in HOSTED_PROVIDERS if (key := self.api_key(p))]

    @property
    def allowed_dir_paths(self) -> list[Path]:
        listed = [Path(p.strip()).expanduser() for p in self.allowed_dirs.split(os.pathsep) if p.strip()]
        return [*listed, *(p.expanduser() for p in self.allowed_dir_list)]

    def bad_keys(self) -> list[str]:
        """Providers whose key holds a character that cannot go in an HTTP header (a newline, non-ASCII)."""
        return [p for p in HOSTED_PROVIDERS if (key := self.api_key(p)) and not header_safe(key)]

    @property
    def resolved_default_provider(self) -> ProviderName:
        if self.default_provider is not None:
            return self.default_provider
        return next((p for p in HOSTED_PROVIDERS if self.api_key(p)), "local")

    @property
    def store_path(self) -> Path:
        return self.data_dir / "edits.sqlite3"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"


ENV_FILE_NAME = "aleph-mcp.env"


def header_safe(value: str) -> bool:
    """Whether `value` can be sent as an HTTP header value: printable ASCII (and tabs) only."""
    return all(32 <= ord(c) < 127 or c == "\t" for c in value)


def env_file() -> Path | None:
    """The env file the operator chose: ALEPH_MCP_ENV_FILE, else `aleph-mcp.env` in the user config dir."""
    explicit = os.environ.get("ALEPH_MCP_ENV_FILE", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ValueError(f"ALEPH_MCP_ENV_FILE names {path}, which is not a file.")
        return path
    default = Path(platformdirs.user_config_dir("aleph-mcp")) / ENV_FILE_NAME
    return default if default.is_file() else None


def load_settings() -> Settings:
    """The server's settings: the process environment over the operator's env file (if any)."""
    return Settings(_env_file=env_file())
