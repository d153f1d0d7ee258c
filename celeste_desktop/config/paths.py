"""Where the app keeps its files: platformdirs by default, or one folder with ``--home``.

Nothing is created at import time; ``AppPaths.ensure()`` creates the folders when the app
actually starts. ``--home DIR`` (or ``CELESTE_HOME``) puts every file under one folder, for
portable installs, tests and support rigs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "CelesteOS Desktop"
APP_AUTHOR = "CelesteOS"
HOME_ENV = "CELESTE_HOME"


@dataclass(frozen=True)
class AppPaths:
    """Every folder and file the app reads or writes."""

    config_dir: Path
    data_dir: Path
    log_dir: Path
    cache_dir: Path
    home: Path | None = None  # set when everything lives under one folder

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> AppPaths:
        """``home`` (from ``--home``) wins over ``CELESTE_HOME``, which wins over platformdirs."""
        chosen = home if home is not None else os.environ.get(HOME_ENV) or None
        if chosen is not None:
            root = Path(chosen).expanduser().resolve()
            return cls(
                config_dir=root / "config",
                data_dir=root / "data",
                log_dir=root / "logs",
                cache_dir=root / "cache",
                home=root,
            )
        dirs = platformdirs.PlatformDirs(APP_NAME, APP_AUTHOR, roaming=False)
        return cls(
            config_dir=Path(dirs.user_config_dir),
            data_dir=Path(dirs.user_data_dir),
            log_dir=Path(dirs.user_log_dir),
            cache_dir=Path(dirs.user_cache_dir),
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def vault_file(self) -> Path:
        return self.data_dir / "vault.bin"

    @property
    def key_file(self) -> Path:
        """Fallback Fernet key file, only used when ``vault_backend`` is ``file``."""
        return self.data_dir / "vault.key"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def spool_dir(self) -> Path:
        return self.cache_dir / "spool"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "celeste-desktop.log"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "instance.lock"

    def all_dirs(self) -> tuple[Path, ...]:
        return (self.config_dir, self.data_dir, self.log_dir, self.cache_dir, self.spool_dir, self.reports_dir)

    def ensure(self) -> None:
        for directory in self.all_dirs():
            directory.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            # The data folder holds the vault and the state: keep it private to the user.
            os.chmod(self.data_dir, 0o700)
