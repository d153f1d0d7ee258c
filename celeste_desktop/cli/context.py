"""What a headless command needs: paths, settings, the vault, logging. Built once per run."""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field

from celeste_desktop.auth.keystore import account_for_folder, choose_keystore
from celeste_desktop.auth.vault import Vault
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import SECRET_SETTINGS, Settings, load_settings
from celeste_desktop.domain.errors import VaultError
from celeste_desktop.support.logs import Redactor, configure_logging


@dataclass
class CliContext:
    paths: AppPaths
    redactor: Redactor = field(default_factory=Redactor)
    log_level: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CliContext:
        paths = AppPaths.resolve(args.home)
        paths.ensure()
        context = cls(paths=paths, log_level=args.log_level)
        configure_logging(paths.log_file, context.log_level or "INFO", context.redactor)
        return context

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings(self.paths.settings_file)

    def secrets(self) -> Vault:
        """The vault; raises VaultError (with the fix) when no key store can be used."""
        keystore = choose_keystore(
            self.settings.vault_backend,
            key_file=self.paths.key_file,
            account=account_for_folder(self.paths.data_dir),
        )
        vault = _RedactingVault(self.paths.vault_file, keystore)
        vault.redactor = self.redactor
        for name in SECRET_SETTINGS:
            self.redactor.add_secret(vault.get(name))
        return vault

    def lazy_secrets(self) -> LazySecrets:
        """The vault, opened only when a secret is actually read or written."""
        return LazySecrets(self)

    def secrets_or_none(self) -> Vault | None:
        try:
            return self.secrets()
        except VaultError:
            return None


class _RedactingVault(Vault):
    """A vault that tells the log redactor about every secret it hands out or stores."""

    redactor: Redactor | None = None

    def get(self, name: str) -> str | None:
        value = super().get(name)
        # The MSAL cache is a large JSON document: MsalSession registers each token in it.
        if self.redactor is not None and name != "msal_token_cache":
            self.redactor.add_secret(value)
        return value

    def set(self, name: str, value: str) -> None:
        if self.redactor is not None:
            self.redactor.add_secret(value)
        super().set(name, value)


class LazySecrets:
    """Opens the vault on first use, so commands without secrets work with no key store."""

    def __init__(self, context: CliContext) -> None:
        self._context = context
        self._vault: Vault | None = None

    def _open(self) -> Vault:
        if self._vault is None:
            self._vault = self._context.secrets()
        return self._vault

    def get(self, name: str) -> str | None:
        return self._open().get(name)

    def set(self, name: str, value: str) -> None:
        self._open().set(name, value)
