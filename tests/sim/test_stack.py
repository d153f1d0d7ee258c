"""The whole simulator stack as the demo, the benchmarks and support engineers start it."""

from __future__ import annotations

import io
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from celeste_desktop.cli.main import run

EXPECTED_KEYS = {
    "authority",
    "tenant",
    "client_id",
    "graph_url",
    "supabase_url",
    "supabase_anon_key",
    "supabase_key",
    "yacht_id",
    "ca_bundle",
    "data_dir",
}


def test_module_prints_the_settings_line_within_five_seconds_and_serves(tmp_path: Path, home: Path) -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "celeste_desktop.sim", "--auto-consent", "--data-dir", str(tmp_path / "sim")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, f"first line after {elapsed:.1f} s"
        settings = json.loads(line)
        assert set(settings) == EXPECTED_KEYS
        assert settings["authority"].startswith("https://127.0.0.1:")
        # The servers answer over TLS with the advertised CA.
        verify = ssl.create_default_context(cafile=settings["ca_bundle"])
        with httpx.Client(verify=verify, trust_env=False) as client:
            discovery = client.get(
                f"{settings['authority']}/{settings['tenant']}/v2.0/.well-known/openid-configuration"
            )
            assert discovery.status_code == 200
            assert discovery.json()["token_endpoint"].startswith(settings["authority"])
            me = client.get(f"{settings['graph_url']}/me")
            assert me.status_code == 401 and me.json()["error"]["code"] == "InvalidAuthenticationToken"
            bucket = client.get(
                f"{settings['supabase_url']}/storage/v1/bucket/documents",
                headers={
                    "apikey": settings["supabase_anon_key"],
                    "authorization": f"Bearer {settings['supabase_key']}",
                },
            )
            assert bucket.status_code == 200, bucket.text
        # The same line, imported as a provisioning file, points the app at the simulators.
        assert run(["--home", str(home), "config", "set", "vault_backend", "file"], stdout=io.StringIO()) == 0
        out = io.StringIO()
        code = run(
            ["--home", str(home), "config", "import", "-"], stdin=io.StringIO(line), stdout=out, stderr=io.StringIO()
        )
        assert code == 0, out.getvalue()
        stored = json.loads((home / "config" / "settings.json").read_text())
        assert stored["graph_url"] == settings["graph_url"]
        assert stored["ca_bundle"] == settings["ca_bundle"]
        assert "supabase_key" not in stored
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == 0


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "celeste_desktop.sim", "--faults", "graph:teapot=0.5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert "kind one of" in result.stderr
