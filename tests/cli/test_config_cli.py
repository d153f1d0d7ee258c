"""``celeste-desktop config ...`` as a script or a support engineer uses it."""

import io
import json
import subprocess
import sys
from pathlib import Path

from celeste_desktop.cli.main import run

YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"


def cli(home: Path, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--home", str(home), *argv], stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_set_get_list(home: Path) -> None:
    assert cli(home, "config", "set", "yacht_id", YACHT)[0] == 0
    code, out, _ = cli(home, "config", "get", "yacht_id")
    assert (code, out.strip()) == (0, YACHT)
    code, out, _ = cli(home, "config", "list")
    assert code == 0 and f"* yacht_id = {YACHT}" in out and "  bucket = documents" in out


def test_bad_value_is_a_message_naming_the_setting_not_a_traceback(home: Path) -> None:
    code, _, err = cli(home, "config", "set", "yacht_id", "12")
    assert code == 2
    assert err.startswith("error: yacht_id: must be a UUID like 3f2b")
    assert "Traceback" not in err


def test_corrupt_settings_file_is_reported(home: Path) -> None:
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text('{"upload_limit": "fast"}')
    code, _, err = cli(home, "config", "get", "bucket")
    assert code == 2 and "upload_limit" in err and "2mbit" in err


def test_secret_goes_to_the_vault_from_stdin_only(home: Path) -> None:
    assert cli(home, "config", "set", "vault_backend", "file")[0] == 0
    code, _, err = cli(home, "config", "set", "supabase_key", "the-key-on-the-command-line")
    assert code == 2 and "standard input" in err
    code, out, _ = cli(home, "config", "set", "supabase_key", "-", stdin="yacht-secret-key-value\n")
    assert code == 0 and "vault" in out
    code, out, _ = cli(home, "config", "get", "supabase_key")
    assert out.strip() == "supabase_key is set (stored in the vault)"
    for path in home.rglob("*"):
        if path.is_file():
            assert b"yacht-secret-key-value" not in path.read_bytes(), path


def test_without_a_credential_store_the_fix_is_named(home: Path) -> None:
    # CI and bare Linux boxes have no Secret Service: never fall back silently.
    code, _, err = cli(home, "config", "set", "supabase_key", "-", stdin="x" * 20)
    assert code == 2 and "vault_backend file" in err


def test_import_provisioning_file(home: Path, tmp_path: Path) -> None:
    cli(home, "config", "set", "vault_backend", "file")
    provisioning = {
        "yacht_id": YACHT,
        "authority": "https://login.microsoftonline.com",
        "tenant": "mysimyacht.onmicrosoft.com",
        "client_id": "8e4a0c7d-0f3b-4a55-9b1e-2c3d4e5f6a7b",
        "graph_url": "https://graph.microsoft.com/v1.0",
        "supabase_url": "https://fleet.supabase.co",
        "supabase_anon_key": "public-anon-key",
        "supabase_key": "yacht-scoped-secret-0123456789",
        "bucket": "documents",
        "data_dir": "/tmp/sim",
        "colour": "blue",
    }
    source = tmp_path / "yacht.json"
    source.write_text(json.dumps(provisioning))
    code, out, _ = cli(home, "config", "import", str(source))
    assert code == 1, "an unknown key must not pass silently"
    assert "UNKNOWN key 'colour'" in out
    assert "ignored data_dir" in out
    assert "stored supabase_key in the vault" in out
    settings = json.loads((home / "config" / "settings.json").read_text())
    assert settings["yacht_id"] == YACHT and settings["cloud"] == "custom"
    assert "supabase_key" not in settings
    assert cli(home, "config", "get", "supabase_key")[1].strip().endswith("(stored in the vault)")


def test_import_is_all_or_nothing_on_a_bad_value(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps({"bucket": "ok-bucket", "yacht_id": "nope"}))
    code, _, err = cli(home, "config", "import", str(source))
    assert code == 2 and "yacht_id" in err
    assert not (home / "config" / "settings.json").exists()


def test_module_entry_point_prints_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "celeste_desktop", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("CelesteOS Desktop ")
