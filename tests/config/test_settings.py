import json
from pathlib import Path

import pytest

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import (
    Settings,
    check_ready,
    load_settings,
    parse_rate,
    parse_value,
    save_settings,
)
from celeste_desktop.domain.errors import ConfigError


def test_home_puts_every_folder_under_one_root(tmp_path: Path) -> None:
    paths = AppPaths.resolve(tmp_path / "h")
    for folder in paths.all_dirs():
        assert folder.is_relative_to(tmp_path / "h")
    assert not (tmp_path / "h").exists(), "nothing may be created before ensure()"
    paths.ensure()
    assert paths.data_dir.is_dir() and paths.log_dir.is_dir()


def test_environment_variable_is_honoured_and_flag_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELESTE_HOME", str(tmp_path / "env"))
    assert AppPaths.resolve().home == (tmp_path / "env").resolve()
    assert AppPaths.resolve(tmp_path / "flag").home == (tmp_path / "flag").resolve()


def test_without_home_platformdirs_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELESTE_HOME", raising=False)
    paths = AppPaths.resolve()
    assert paths.home is None
    assert "CelesteOS" in str(paths.config_dir)


def test_round_trip_keeps_only_changed_values(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings().replace(yacht_id="3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f", schedule=("22:00-06:00",))
    save_settings(path, settings)
    stored = json.loads(path.read_text())
    assert stored == {"schedule": ["22:00-06:00"], "yacht_id": "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"}
    assert load_settings(path) == settings


def test_bad_value_in_file_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"yacht_id": "not-a-uuid"}')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.setting == "yacht_id"
    assert "UUID like 3f2b" in info.value.message


def test_broken_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"bucket": "documents",\n  oops}')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "line 2" in info.value.message


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("authority", "http://login.example.com", "https://"),
        ("graph_url", "ftp://x", "http://"),
        ("upload_limit", "fast", "2mbit"),
        ("schedule", "25:00-06:00", "22:00-06:00"),
        ("concurrency_small", "0", "from 1 to 32"),
        ("bucket", "My Bucket", "bucket name"),
        ("ca_bundle", "/does/not/exist.pem", "does not exist"),
        ("pipeline_mode", "webhook", "register, digest"),
        ("nonsense", "1", "config list"),
    ],
)
def test_each_validation_message_is_actionable(name: str, raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_value(name, raw)
    assert info.value.setting == name
    assert fragment in info.value.message


def test_rates_and_presets() -> None:
    assert parse_rate("2mbit") == 250_000
    assert parse_rate("512KiB/s") == 512 * 1024
    assert parse_rate("0") == 0
    china = Settings(cloud="china", tenant="contoso.partner.onmschina.cn")
    assert china.authority_url == "https://login.chinacloudapi.cn/contoso.partner.onmschina.cn"
    assert china.effective_graph_url == "https://microsoftgraph.chinacloudapi.cn/v1.0"
    custom = Settings(cloud="custom", authority="https://127.0.0.1:4443/", graph_url="https://127.0.0.1:4444/v1.0")
    assert custom.authority_url == "https://127.0.0.1:4443/organizations"


def test_check_ready_lists_what_is_missing() -> None:
    names = {problem.setting for problem in check_ready(Settings())}
    assert {"yacht_id", "client_id", "supabase_url", "supabase_anon_key"} <= names


def test_settings_reference_in_docs_matches_the_code() -> None:
    from celeste_desktop.config.settings import reference_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown(), "regenerate docs/settings.md (command at its top)"
