"""Settings: the only place that reads the environment (and an env file the operator chose).

Settings come from the process environment, and from an env file only at an explicit path
(`ALEPH_MCP_ENV_FILE`) or at `aleph-mcp.env` in the user's config directory. A `.env` in whatever folder the
server starts in is never read: an MCP client may start it inside a project someone else wrote.

Each provider's key and base-URL fields come from the provider registry, so a new provider brings its
settings with it; `api_key(name)`, `base_url(name)` and `provider_config(name)` read them by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import platformdirs
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aleph_mcp.providers.base import ProviderConfig
from aleph_mcp.providers.registry import ALL_PROVIDERS as ALL_PROVIDERS
from aleph_mcp.providers.registry import HOSTED_PROVIDERS as HOSTED_PROVIDERS
from aleph_mcp.providers.registry import KEYLESS_DEFAULT, PROVIDERS, REGISTRY, check_price_key
from aleph_mcp.providers.registry import ProviderName as ProviderName
from aleph_mcp.redact import url_passwords


class PriceOverride(BaseModel):
    """A user's price for one provider (or provider/model): `usd` per edit, or per second of video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: float = Field(ge=0, allow_inf_nan=False)
    per: Literal["edit", "second"] = "edit"


def _provider_fields() -> dict[str, Any]:
    """`<p>_api_key` (read from each of the registry's variable names), `<p>_max_concurrent` and every
    URL setting."""
    fields: dict[str, Any] = {}
    for spec in PROVIDERS:
        if spec.key_env:
            alias = AliasChoices(*spec.key_env)
            fields[spec.key_field] = (SecretStr | None, Field(default=None, validation_alias=alias))
            # A plan's concurrent-job limit: edits beyond it wait here, unsent, until one of the
            # provider's jobs ends. None: no local limit; a 429 still makes edits wait.
            limit = Field(default=None, ge=1)
            fields[f"{spec.name}_max_concurrent"] = (int | None, limit)
            # This provider's own request pace (status reads and waiting creates); None: the default.
            fields[f"{spec.name}_requests_per_second"] = (float | None, Field(default=None, gt=0))
        fields.update({url.field: (str, url.default) for url in spec.urls})
    return fields


KEY_FIELDS = tuple(REGISTRY[name].key_field for name in HOSTED_PROVIDERS)

if TYPE_CHECKING:
    _ProviderFields = BaseSettings  # the generated fields are read by name, never as attributes
else:
    _ProviderFields = create_model("_ProviderFields", __base__=BaseSettings, **_provider_fields())


def _paths(text: str) -> list[Path]:
    return [Path(p.strip()).expanduser() for p in text.split(os.pathsep) if p.strip()]


class Settings(_ProviderFields):
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
    # Where finished videos live: unset, `<data_dir>/archive`; `s3://bucket/prefix`, an S3-compatible store
    # (endpoint, region and credentials from the usual AWS_* variables; needs the `s3` extra).
    archive_url: str | None = None
    # Replicas (README "Run it as a service"): postgresql://user:password@host/db puts the edits in
    # PostgreSQL, shared by every replica; unset, they stay in SQLite in the data dir. May hold a password:
    # shown only through `redact.url_without_password`.
    store_url: SecretStr | None = None
    default_provider: ProviderName | None = None

    # Renders take 2-15 minutes: start at 5 s (Runway's floor), back off to 60 s.
    poll_interval: float = Field(default=5.0, gt=0)
    poll_max_interval: float = Field(default=60.0, gt=0)
    poll_concurrency: int = Field(default=4, ge=1, le=64)
    # No provider publishes a request-rate limit for status reads: this pace per provider host keeps
    # thousands of edits in flight from hammering one (ALEPH_MCP_<P>_REQUESTS_PER_SECOND overrides it).
    poll_requests_per_second: float = Field(default=20.0, gt=0)
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
    budget_usd_per_user: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # each owner's own cap
    confirm_above_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # Serving over HTTP (README "Run it as a service"): who may call, and what a request may carry.
    # Static tokens: "principal=token,principal=sha256:HEX" (or one per line in the file).
    http_tokens: SecretStr | None = None
    http_tokens_file: Path | None = None
    # OAuth 2.1 resource server: bearer JWTs of this issuer, signed by its JWKS, for this audience.
    oauth_issuer: str | None = None
    oauth_jwks_url: str | None = None
    oauth_audience: str | None = None
    oauth_scopes: str = ""  # space- or comma-separated; every one is required
    # The server's public https URL (behind a proxy): the OAuth resource identifier, and webhooks' base.
    public_url: str | None = None
    # Requests carry data URIs (aimlapi takes 16 MB as base64, about 22 MB): room for that, no more.
    http_max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    # Host / Origin values accepted when bound beyond loopback (DNS-rebinding protection), comma-separated.
    http_allowed_hosts: str = ""
    http_allowed_origins: str = ""
    # Folders HTTP callers may name local files in (os.pathsep-separated). Empty: none; they pass URLs.
    http_allowed_dirs: str = ""
    # kie's webhookHmacKey: with it, a kie webhook whose signature does not match is refused (401).
    kie_webhook_hmac_key: SecretStr | None = None
    # True: above the threshold only a person's answer starts an edit; confirm=true from a client that
    # cannot ask is refused too.
    confirm_requires_person: bool = False
    # edit_video(whole_clip=true): a clip longer than the model's window goes out as at most this many
    # windows (each billed as one edit), neighbours sharing `window_overlap` seconds.
    max_windows: int = Field(default=6, ge=1, le=100)
    window_overlap: float = Field(default=0.5, ge=0, le=2, allow_inf_nan=False)

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # MCP clients pass env values without a shell, so "~/videos" arrives unexpanded.
        return value.expanduser()

    @field_validator("store_url")
    @classmethod
    def _blank_url_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # Its scheme is checked where it is opened (store.factory): a validation error here would print
        # the value, password and all.
        text = value.get_secret_value().strip() if value is not None else ""
        return SecretStr(text) if text else None

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
        for key in value:
            check_price_key(key)
        return value

    @field_validator(*KEY_FIELDS)
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    def api_key(self, provider: str) -> str | None:
        secret: SecretStr | None = getattr(self, f"{provider}_api_key", None)
        return secret.get_secret_value().strip() if secret is not None else None

    def base_url(self, provider: str) -> str:
        """The base URL setting `<provider>_base_url` (also `kie_upload`), slash trimmed."""
        url: str = getattr(self, f"{provider}_base_url")
        return url.rstrip("/")

    def provider_config(self, name: str) -> ProviderConfig | None:
        """What the registry's factory builds `name` from; None for a provider that lacks its key."""
        spec = REGISTRY[name]
        key = self.api_key(name) or ""
        if spec.capabilities.needs_key and not key:
            return None
        urls = {url.field: str(getattr(self, url.field)).rstrip("/") for url in spec.urls}
        base = urls[spec.urls[0].field] if spec.urls else ""
        return ProviderConfig(self.data_dir, self.request_timeout, key, base, urls)

    def max_concurrent(self, provider: str) -> int | None:
        limit: int | None = getattr(self, f"{provider}_max_concurrent", None)
        return limit

    def requests_per_second(self, provider: str) -> float:
        """The pace of the poller's requests to `provider`: its own setting, else the default."""
        own: float | None = getattr(self, f"{provider}_requests_per_second", None)
        return own if own is not None else self.poll_requests_per_second

    def provider_origins(self) -> list[str]:
        """Every configured provider URL (base and upload hosts): the origins results may come from."""
        return [
            str(getattr(self, url.field)).rstrip("/")
            for spec in PROVIDERS
            if spec.capabilities.needs_key
            for url in spec.urls
        ]

    def secrets(self) -> list[str]:
        """Every configured key (and the store URL's password), for scrubbing text that might echo one."""
        keys = [key for p in HOSTED_PROVIDERS if (key := self.api_key(p))]
        return keys + (url_passwords(self.store_url.get_secret_value()) if self.store_url else [])

    @property
    def required_scopes(self) -> list[str]:
        return self.oauth_scopes.replace(",", " ").split()

    @property
    def allowed_dir_paths(self) -> list[Path]:
        return [*_paths(self.allowed_dirs), *(p.expanduser() for p in self.allowed_dir_list)]

    @property
    def http_allowed_dir_paths(self) -> list[Path]:
        return _paths(self.http_allowed_dirs)

    def bad_keys(self) -> list[str]:
        """Providers whose key holds a character that cannot go in an HTTP header (a newline, non-ASCII)."""
        return [p for p in HOSTED_PROVIDERS if (key := self.api_key(p)) and not header_safe(key)]

    @property
    def resolved_default_provider(self) -> ProviderName:
        if self.default_provider is not None:
            return self.default_provider
        return next((p for p in HOSTED_PROVIDERS if self.api_key(p)), KEYLESS_DEFAULT)

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
