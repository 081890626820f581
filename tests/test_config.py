"""Settings: the environment variables and .env names in DESIGN.md's configuration table."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from pydantic import ValidationError

from aleph_mcp.config import ALL_PROVIDERS, HOSTED_PROVIDERS, Settings, load_settings

from .conftest import make_settings

KEY_VARIABLES = [
    ("kie", "ALEPH_MCP_KIE_API_KEY"),
    ("aimlapi", "ALEPH_MCP_AIMLAPI_API_KEY"),
    ("crun", "ALEPH_MCP_CRUN_API_KEY"),
    ("krea", "ALEPH_MCP_KREA_API_KEY"),
    ("runway", "ALEPH_MCP_RUNWAY_API_KEY"),
    ("kie", "KIE_API_KEY"),
    ("aimlapi", "AIMLAPI_API_KEY"),
    ("crun", "CRUN_API_KEY"),
    ("krea", "KREA_API_KEY"),
    ("runway", "RUNWAYML_API_SECRET"),
]
CONVENTIONAL = {
    "kie": "KIE_API_KEY",
    "aimlapi": "AIMLAPI_API_KEY",
    "crun": "CRUN_API_KEY",
    "krea": "KREA_API_KEY",
    "runway": "RUNWAYML_API_SECRET",
}
DEFAULT_BASE_URLS = {
    "kie": "https://api.kie.ai",
    "kie_upload": "https://kieai.redpandaai.co",
    "aimlapi": "https://api.aimlapi.com",
    "crun": "https://api.crun.ai",
    "krea": "https://api.krea.ai",
    "runway": "https://api.dev.runwayml.com",
}


def env_settings() -> Settings:
    """Settings from the process environment only (no .env file)."""
    return Settings(_env_file=None)


# -- API keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "variable"), KEY_VARIABLES)
def test_each_key_variable_configures_its_provider(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str
) -> None:
    """Both the ALEPH_MCP_ name and the vendor's conventional name set the key, and only for that provider."""
    monkeypatch.setenv(variable, f"secret-for-{provider}")
    settings = env_settings()
    assert settings.api_key(provider) == f"secret-for-{provider}"
    assert [p for p in HOSTED_PROVIDERS if settings.api_key(p)] == [provider]
    assert settings.secrets() == [f"secret-for-{provider}"]


@pytest.mark.parametrize("provider", HOSTED_PROVIDERS)
def test_the_aleph_mcp_name_wins_over_the_conventional_one(
    monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """With both names set, ALEPH_MCP_<P>_API_KEY is the one used."""
    monkeypatch.setenv(f"ALEPH_MCP_{provider.upper()}_API_KEY", "specific")
    monkeypatch.setenv(CONVENTIONAL[provider], "conventional")
    assert env_settings().api_key(provider) == "specific"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
@pytest.mark.parametrize(("provider", "variable"), KEY_VARIABLES)
def test_a_blank_key_counts_as_missing(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str, blank: str
) -> None:
    """An empty or whitespace-only key configures nothing."""
    monkeypatch.setenv(variable, blank)
    settings = env_settings()
    assert settings.api_key(provider) is None
    assert settings.secrets() == []
    assert settings.resolved_default_provider == "local"


@pytest.mark.parametrize("provider", HOSTED_PROVIDERS)
def test_a_blank_aleph_mcp_key_does_not_hide_the_conventional_one(
    monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """`ALEPH_MCP_KIE_API_KEY=` left empty in a template still lets KIE_API_KEY through."""
    monkeypatch.setenv(f"ALEPH_MCP_{provider.upper()}_API_KEY", "")
    monkeypatch.setenv(CONVENTIONAL[provider], "conventional")
    assert env_settings().api_key(provider) == "conventional"


def test_a_key_with_surrounding_whitespace_is_used_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pasted key with a trailing newline is sent, and scrubbed, without it."""
    monkeypatch.setenv("KREA_API_KEY", "  krea-secret\n")
    settings = env_settings()
    assert settings.api_key("krea") == "krea-secret"
    assert settings.secrets() == ["krea-secret"]


def test_keys_can_be_passed_by_field_name(tmp_path: Path) -> None:
    """Code (tests, embedding apps) can set keys directly without the environment."""
    settings = make_settings(tmp_path, runway_api_key="rw-direct", kie_api_key="")
    assert settings.api_key("runway") == "rw-direct"
    assert settings.api_key("kie") is None


def test_secrets_lists_every_configured_key_in_provider_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """secrets() returns each configured key once, and nothing for providers without one."""
    monkeypatch.setenv("RUNWAYML_API_SECRET", "rw-5")
    monkeypatch.setenv("ALEPH_MCP_KIE_API_KEY", "kie-1")
    monkeypatch.setenv("CRUN_API_KEY", "crun-3")
    assert env_settings().secrets() == ["kie-1", "crun-3", "rw-5"]


def test_unknown_providers_have_no_key() -> None:
    """api_key of local or a made-up name is None rather than an error."""
    settings = env_settings()
    assert settings.api_key("local") is None
    assert settings.api_key("nonsense") is None


# -- default provider ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_keys", "expected"),
    [
        ((), "local"),
        (("runway",), "runway"),
        (("krea", "runway"), "krea"),
        (("crun", "krea", "runway"), "crun"),
        (("aimlapi", "runway"), "aimlapi"),
        (("runway", "kie"), "kie"),
        (HOSTED_PROVIDERS, "kie"),
    ],
)
def test_the_default_provider_is_the_first_with_a_key(
    monkeypatch: pytest.MonkeyPatch, with_keys: tuple[str, ...], expected: str
) -> None:
    """Without an explicit default: kie, aimlapi, crun, krea, runway in that order, else local."""
    for provider in with_keys:
        monkeypatch.setenv(CONVENTIONAL[provider], f"key-{provider}")
    settings = env_settings()
    assert settings.default_provider is None
    assert settings.resolved_default_provider == expected


@pytest.mark.parametrize("provider", ALL_PROVIDERS)
def test_an_explicit_default_provider_wins(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    """ALEPH_MCP_DEFAULT_PROVIDER is used even when other providers have keys."""
    for hosted in HOSTED_PROVIDERS:
        monkeypatch.setenv(CONVENTIONAL[hosted], f"key-{hosted}")
    monkeypatch.setenv("ALEPH_MCP_DEFAULT_PROVIDER", provider)
    assert env_settings().resolved_default_provider == provider


def test_the_default_provider_name_ignores_case_and_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Krea ` in a config file means krea."""
    monkeypatch.setenv("ALEPH_MCP_DEFAULT_PROVIDER", " Krea ")
    assert env_settings().default_provider == "krea"


@pytest.mark.parametrize("name", ["openai", "runwayml", "kie.ai", "k ie"])
def test_an_unknown_default_provider_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A misspelt provider name stops startup with an error naming the setting."""
    monkeypatch.setenv("ALEPH_MCP_DEFAULT_PROVIDER", name)
    with pytest.raises(ValidationError, match="default_provider"):
        env_settings()


def test_a_blank_default_provider_means_none_was_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ALEPH_MCP_DEFAULT_PROVIDER=` falls back to the first provider with a key."""
    monkeypatch.setenv("ALEPH_MCP_DEFAULT_PROVIDER", "")
    monkeypatch.setenv("AIMLAPI_API_KEY", "k")
    settings = env_settings()
    assert settings.default_provider is None
    assert settings.resolved_default_provider == "aimlapi"


# -- base URLs -------------------------------------------------------------------------------------


def test_base_urls_default_to_the_public_apis() -> None:
    """Without overrides each provider talks to its public host."""
    settings = env_settings()
    assert {p: settings.base_url(p) for p in DEFAULT_BASE_URLS} == DEFAULT_BASE_URLS


@pytest.mark.parametrize("provider", list(DEFAULT_BASE_URLS))
def test_a_base_url_override_applies_to_its_provider_only(
    monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """ALEPH_MCP_<P>_BASE_URL (and ALEPH_MCP_KIE_UPLOAD_BASE_URL) redirect one host, slash trimmed."""
    monkeypatch.setenv(f"ALEPH_MCP_{provider.upper()}_BASE_URL", "http://127.0.0.1:8765/proxy/")
    settings = env_settings()
    assert settings.base_url(provider) == "http://127.0.0.1:8765/proxy"
    others = {p: settings.base_url(p) for p in DEFAULT_BASE_URLS if p != provider}
    assert others == {p: u for p, u in DEFAULT_BASE_URLS.items() if p != provider}


# -- polling and timeouts --------------------------------------------------------------------------


def test_poll_intervals_and_edit_timeout_are_read_as_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three timing variables parse as floats."""
    monkeypatch.setenv("ALEPH_MCP_POLL_INTERVAL", "2.5")
    monkeypatch.setenv("ALEPH_MCP_POLL_MAX_INTERVAL", "30")
    monkeypatch.setenv("ALEPH_MCP_EDIT_TIMEOUT", "900.75")
    settings = env_settings()
    assert (settings.poll_interval, settings.poll_max_interval, settings.edit_timeout) == (2.5, 30.0, 900.75)
    assert isinstance(settings.poll_max_interval, float)


def test_timing_defaults_suit_renders_of_several_minutes() -> None:
    """Unset, polling starts at 5 s, backs off to 60 s, and gives up after two hours."""
    settings = env_settings()
    assert (settings.poll_interval, settings.poll_max_interval, settings.edit_timeout) == (5.0, 60.0, 7200.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALEPH_MCP_POLL_INTERVAL", "0"),
        ("ALEPH_MCP_POLL_MAX_INTERVAL", "-1"),
        ("ALEPH_MCP_EDIT_TIMEOUT", "soon"),
    ],
)
def test_a_non_positive_or_non_numeric_timing_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Zero, negative or unparsable seconds are refused at startup."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("ALEPH_MCP_").lower()):
        env_settings()


def test_a_blank_timing_variable_keeps_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ALEPH_MCP_POLL_INTERVAL=` is unset, not a parse error."""
    monkeypatch.setenv("ALEPH_MCP_POLL_INTERVAL", "")
    assert env_settings().poll_interval == 5.0


# -- directories -----------------------------------------------------------------------------------


def test_allowed_dirs_split_on_pathsep_with_home_expanded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Entries are separated by os.pathsep; ~ expands, blank entries and padding are dropped."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    first, second = tmp_path / "in1", tmp_path / "in 2"
    value = os.pathsep.join([str(first), "~/clips", "", "  ", f" {second} "])
    monkeypatch.setenv("ALEPH_MCP_ALLOWED_DIRS", value)
    assert env_settings().allowed_dir_paths == [first, home / "clips", second]


def test_no_allowed_dirs_means_no_local_files() -> None:
    """Unset, the list of allowed directories is empty."""
    assert env_settings().allowed_dir_paths == []


def test_the_data_dir_holds_the_store_and_the_archive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ALEPH_MCP_DATA_DIR sets where the SQLite file and the archive live."""
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", str(tmp_path / "aleph"))
    settings = env_settings()
    assert settings.data_dir == tmp_path / "aleph"
    assert settings.store_path == tmp_path / "aleph" / "edits.sqlite3"
    assert settings.archive_dir == tmp_path / "aleph" / "archive"


def test_a_data_dir_under_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MCP clients pass `~/...` unexpanded; it must not become a folder literally named ~."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALEPH_MCP_DATA_DIR", "~/aleph")
    assert env_settings().data_dir == tmp_path / "home" / "aleph"


@pytest.mark.parametrize("value", [None, ""])
def test_the_data_dir_defaults_to_the_platform_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Unset or blank, the data dir is the platform's, never the working directory."""
    if value is not None:
        monkeypatch.setenv("ALEPH_MCP_DATA_DIR", value)
    assert env_settings().data_dir == Path(platformdirs.user_data_dir("aleph-mcp"))


# -- .env file -------------------------------------------------------------------------------------


ENV_TEXT = (
    "ALEPH_MCP_KREA_API_KEY=krea-from-file\n"
    "RUNWAYML_API_SECRET=rw-from-file\n"
    "ALEPH_MCP_KIE_API_KEY=\n"
    "ALEPH_MCP_DEFAULT_PROVIDER=\n"
    "ALEPH_MCP_POLL_INTERVAL=3.5\n"
    "ALEPH_MCP_CRUN_BASE_URL=http://localhost:9000/\n"
    "UNRELATED_SETTING=whatever\n"
)


@pytest.fixture
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty user config dir of this test's own (XDG_CONFIG_HOME)."""
    home = tmp_path / "config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_a_dotenv_in_the_working_directory_is_never_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_home: Path
) -> None:
    """A project's .env (keys, base URLs, allowed dirs of someone else's choosing) changes nothing."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(
        "ALEPH_MCP_RUNWAY_BASE_URL=https://attacker.example\nALEPH_MCP_ALLOWED_DIRS=/\n"
        "RUNWAYML_API_SECRET=attacker-key\nALEPH_MCP_ALLOW_PRIVATE_URLS=true\nALEPH_MCP_DATA_DIR=/tmp/x\n"
    )
    monkeypatch.chdir(project)
    settings = load_settings()
    assert settings.base_url("runway") == "https://api.dev.runwayml.com"
    assert settings.allowed_dirs == "" and settings.api_key("runway") is None
    assert settings.allow_private_urls is False
    assert settings.data_dir == Path(platformdirs.user_data_dir("aleph-mcp"))


def test_an_env_file_named_by_aleph_mcp_env_file_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_home: Path
) -> None:
    """Prefixed and conventional names both work from the file; blank lines in it are unset."""
    path = tmp_path / "ops" / "aleph.env"
    path.parent.mkdir()
    path.write_text(ENV_TEXT)
    monkeypatch.setenv("ALEPH_MCP_ENV_FILE", str(path))
    settings = load_settings()
    assert settings.api_key("krea") == "krea-from-file"
    assert settings.api_key("runway") == "rw-from-file"
    assert settings.api_key("kie") is None
    assert settings.resolved_default_provider == "krea"
    assert settings.poll_interval == 3.5
    assert settings.base_url("crun") == "http://localhost:9000"


def test_aleph_mcp_env_in_the_user_config_dir_is_read(config_home: Path) -> None:
    """Without ALEPH_MCP_ENV_FILE, `<user config dir>/aleph-mcp/aleph-mcp.env` is the file."""
    (config_home / "aleph-mcp").mkdir()
    (config_home / "aleph-mcp" / "aleph-mcp.env").write_text(ENV_TEXT)
    assert load_settings().api_key("krea") == "krea-from-file"


def test_an_env_file_that_does_not_exist_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A mistyped ALEPH_MCP_ENV_FILE is not silently ignored."""
    monkeypatch.setenv("ALEPH_MCP_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ValueError, match="ALEPH_MCP_ENV_FILE names"):
        load_settings()


def test_the_environment_wins_over_the_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A variable set in the process environment overrides the same name in the env file."""
    path = tmp_path / "aleph.env"
    path.write_text("ALEPH_MCP_KREA_API_KEY=from-file\nALEPH_MCP_EDIT_TIMEOUT=100\n")
    monkeypatch.setenv("ALEPH_MCP_ENV_FILE", str(path))
    monkeypatch.setenv("ALEPH_MCP_KREA_API_KEY", "from-env")
    settings = load_settings()
    assert settings.api_key("krea") == "from-env"
    assert settings.edit_timeout == 100.0


# -- secrets stay secret ---------------------------------------------------------------------------


def test_keys_never_appear_in_repr_str_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Printing, logging or dumping the settings shows masks, never a key."""
    keys = {p: f"very-secret-{p}-0123456789" for p in HOSTED_PROVIDERS}
    for provider, key in keys.items():
        monkeypatch.setenv(CONVENTIONAL[provider], key)
    settings = env_settings()
    assert settings.secrets() == list(keys.values())
    renderings = [repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())]
    for text in renderings:
        for key in keys.values():
            assert key not in text
        assert "**********" in text
