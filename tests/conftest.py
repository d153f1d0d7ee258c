"""Suite-wide settings: Qt offscreen, no real home folder touched, no network but loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeste_desktop.sim.stack import SimStack, running

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never let a test read or write the developer's real settings, vault or state.
os.environ.pop("CELESTE_HOME", None)
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An empty ``--home`` folder for one test."""
    folder = tmp_path / "home"
    folder.mkdir()
    yield folder


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimStack]:
    """The whole simulated stack (Entra ID, Graph, Supabase) on loopback, with auto-consent."""
    with running(data_dir=tmp_path / "sim", auto_consent=True, device_code_interval_s=1) as stack:
        yield stack


@pytest.fixture
def sim_home(home: Path, sim: SimStack) -> Path:
    """A ``--home`` folder whose settings and vault point at ``sim`` (as `config import` would)."""
    from celeste_desktop.cli.config_cmd import import_provisioning
    from celeste_desktop.cli.context import CliContext
    from celeste_desktop.config.paths import AppPaths
    from celeste_desktop.config.settings import Settings, save_settings

    paths = AppPaths.resolve(home)
    paths.ensure()
    save_settings(paths.settings_file, Settings(vault_backend="file"))
    import_provisioning(paths.settings_file, sim.settings_json(), CliContext(paths=paths).secrets())
    return home
