"""Fakes for the vault tests: an in-memory key store and an in-memory keyring backend."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.core
import keyring.errors
import pytest
from keyring.backend import KeyringBackend


class MemoryKeyStore:
    """A KeyStore that keeps the key in memory; counts writes so tests can see key creation."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self.stores = 0

    def __repr__(self) -> str:
        return "MemoryKeyStore()"

    def load(self) -> bytes | None:
        return self.key

    def store(self, key: bytes) -> None:
        self.key = key
        self.stores += 1

    def delete(self) -> None:
        self.key = None

    def describe(self) -> str:
        return "the test key store"


class InMemoryKeyring(KeyringBackend):
    """A real keyring backend with a dict behind it, so KeyringKeyStore runs unmodified."""

    priority = 5.0  # a "recommended" backend, like the OS stores

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[service, username] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[service, username]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


# Defining a backend registers it with keyring's auto-detection; keep it out of that registry
# so no other test's detection can pick the fake up.
KeyringBackend._classes.discard(InMemoryKeyring)


@pytest.fixture
def memory_keystore() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def use_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restores whatever keyring backend (or none yet) was current before the test."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    yield


@pytest.fixture
def fake_keyring(use_keyring: None) -> InMemoryKeyring:
    backend = InMemoryKeyring()
    keyring.set_keyring(backend)
    return backend
