"""The encrypted vault: named secrets (MSAL token cache, Supabase key, salts) in one Fernet file.

The file holds one Fernet token whose plaintext is ``{"format": 1, "secrets": {name: value}}``;
the key lives in a ``KeyStore``. Every operation takes a cross-process file lock and re-reads
the file, so the GUI and a scheduled CLI run see each other's writes. A vault that cannot be
read (altered, truncated, or its key lost) is moved aside, never deleted, and reported once as
a ``VaultError``; after that the vault is empty so the next connect works.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from filelock import FileLock, Timeout

from celeste_desktop.auth.keystore import KeyStore, stray_temp_files, write_private_file
from celeste_desktop.domain.errors import VaultError

if TYPE_CHECKING:
    import msal

log = logging.getLogger(__name__)

VAULT_FORMAT = 1
MSAL_CACHE_ENTRY = "msal_token_cache"
UNREADABLE_TITLE = "Saved sign-in could not be read"

_Secrets = dict[str, str]


class _Unreadable(Exception):
    """Internal: the vault file exists but cannot be turned into secrets (reason is safe)."""


class _NewerFormat(_Unreadable):
    """Internal: written by a newer version; keep it in place for that version."""


class Vault:
    """Named string secrets, encrypted at rest, shared safely between processes."""

    def __init__(
        self,
        path: Path,
        keystore: KeyStore,
        *,
        lock_timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._path = path
        self._keystore = keystore
        self._lock_timeout = lock_timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        # Built on first use so that constructing a Vault touches no disk.
        self._lock: FileLock | None = None

    def __repr__(self) -> str:
        return f"Vault(path={str(self._path)!r}, keystore={self._keystore!r})"

    @property
    def path(self) -> Path:
        return self._path

    # -- public operations -------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The secret called ``name``, or None. Never creates a key or a file."""
        if not self._path.parent.is_dir():
            return None
        with self._locked():
            return self._read().get(name)

    def names(self) -> list[str]:
        """Names of the stored secrets, sorted."""
        if not self._path.parent.is_dir():
            return []
        with self._locked():
            return sorted(self._read())

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``; makes the key on the first write."""
        if not name:
            raise ValueError("a vault entry needs a name")
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            secrets = self._read()
            secrets[name] = value
            self._write(secrets)

    def delete(self, name: str) -> None:
        """Forget ``name``; no error when it is not there."""
        if not self._path.parent.is_dir():
            return
        with self._locked():
            secrets = self._read()
            if secrets.pop(name, None) is not None:
                self._write(secrets)

    def wipe(self) -> None:
        """Remove the vault file, stray temporary copies and the key itself (Disconnect).

        Files moved aside earlier stay for support, but the key that could open them is gone.
        """
        if not self._path.parent.is_dir():
            self._keystore.delete()
            return
        with self._locked():
            for stray in [self._path, *stray_temp_files(self._path)]:
                try:
                    stray.unlink(missing_ok=True)
                except OSError as error:
                    raise VaultError(
                        f"The saved sign-in could not be removed ({error.strerror}). Close "
                        "other copies of the app and try again.",
                        title="Saved sign-in not removed",
                        path=str(stray),
                    ) from None
            self._keystore.delete()
        log.info("vault wiped: %s", self._path)

    # -- locking -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Callers make sure the folder exists: reads return early rather than create it.
        if self._lock is None:
            self._lock = FileLock(f"{self._path}.lock", timeout=self._lock_timeout, mode=0o600)
        try:
            self._lock.acquire()
        except Timeout:
            raise VaultError(
                f"Another CelesteOS Desktop process has held the saved sign-in for over "
                f"{self._lock_timeout:g} seconds. Wait for a scheduled run to finish or close "
                "other copies of the app, then try again.",
                title="Saved sign-in is busy",
                path=str(self._path),
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> _Secrets:
        try:
            blob = self._path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise VaultError(
                f"The saved sign-in could not be opened ({error.strerror}). Check the folder's "
                "permissions.",
                title=UNREADABLE_TITLE,
                path=str(self._path),
            ) from None
        key = self._keystore.load()
        try:
            return _decrypt(blob, key)
        except _NewerFormat:
            newer = True
        except _Unreadable as problem:
            newer, reason = False, str(problem)
        # Raised outside the except blocks so no decoder error (whose ``doc`` is the plaintext)
        # rides along as __context__.
        if newer:
            raise VaultError(
                "The saved sign-in was written by a newer version of CelesteOS Desktop. Update "
                "the app, or move the file away and connect again.",
                title=UNREADABLE_TITLE,
                path=str(self._path),
            )
        raise self._quarantine(reason, key_missing=key is None)

    def _quarantine(self, reason: str, *, key_missing: bool) -> VaultError:
        """Move the unreadable file aside (never delete it) and raise the person-facing error."""
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self._path.with_name(f"{self._path.name}.bad-{stamp}")
        counter = 1
        while aside.exists():
            aside = self._path.with_name(f"{self._path.name}.bad-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self._path, aside)
        except OSError as error:
            raise VaultError(
                f"The saved sign-in could not be read, and could not be moved aside "
                f"({error.strerror}). Move or delete it, then connect again.",
                title=UNREADABLE_TITLE,
                path=str(self._path),
            ) from None
        log.warning("vault unreadable (%s); moved aside to %s", reason, aside.name)
        why = f" because its key is missing from {self._keystore.describe()}" if key_missing else ""
        return VaultError(
            f"The saved sign-in could not be read{why}; connect again. The unreadable file was "
            f"kept as {aside.name}.",
            title=UNREADABLE_TITLE,
            path=str(self._path),
        )

    # -- writing -----------------------------------------------------------------------------

    def _key_for_writing(self) -> bytes:
        key = self._keystore.load()
        if key is not None and _valid_key(key):
            return key
        # Only reached when the file is absent or was just read with this key, so a missing or
        # malformed key cannot orphan existing secrets.
        key = Fernet.generate_key()
        self._keystore.store(key)
        log.info("new vault key stored in %s", self._keystore.describe())
        return key

    def _write(self, secrets: _Secrets) -> None:
        key = self._key_for_writing()
        plaintext = json.dumps({"format": VAULT_FORMAT, "secrets": secrets}).encode("utf-8")
        token = Fernet(key).encrypt(plaintext)
        try:
            write_private_file(self._path, token)
        except OSError as error:
            raise VaultError(
                f"The sign-in could not be saved ({error.strerror}). Check free space and the "
                "folder's permissions.",
                title="Sign-in not saved",
                path=str(self._path),
            ) from None


def _valid_key(key: bytes) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


def _decrypt(blob: bytes, key: bytes | None) -> _Secrets:
    """Secrets from the file's bytes, or ``_Unreadable`` with a reason safe to log."""
    if key is None:
        raise _Unreadable("the key store has no key")
    if not _valid_key(key):
        raise _Unreadable("the stored key is malformed")
    try:
        plaintext = Fernet(key).decrypt(blob)
    except InvalidToken:
        raise _Unreadable("the key does not open it (altered, truncated or wrong key)") from None
    try:
        document = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Unreadable("not valid JSON") from None
    if not isinstance(document, dict):
        raise _Unreadable("unexpected layout")
    if document.get("format") != VAULT_FORMAT:
        if isinstance(document.get("format"), int) and document["format"] > VAULT_FORMAT:
            raise _NewerFormat("newer format")
        raise _Unreadable("unexpected format")
    secrets = document.get("secrets")
    if not isinstance(secrets, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in secrets.items()
    ):
        raise _Unreadable("unexpected layout")
    return dict(secrets)


# ---------------------------------------------------------------------------------------------
# MSAL token cache


def load_cache(vault: Vault) -> msal.SerializableTokenCache:
    """The MSAL token cache saved in the vault, or an empty one."""
    import msal

    cache = msal.SerializableTokenCache()
    state = vault.get(MSAL_CACHE_ENTRY)
    if state is None:
        return cache
    try:
        parsed = json.loads(state)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        # Left by a bug or an older build; dropping the entry lets the next sign-in save cleanly.
        vault.delete(MSAL_CACHE_ENTRY)
        raise VaultError(
            "The saved Microsoft sign-in could not be read; connect again.",
            title=UNREADABLE_TITLE,
        )
    cache.deserialize(state)
    return cache


def save_cache_if_changed(vault: Vault, cache: msal.SerializableTokenCache) -> bool:
    """Save the cache when MSAL changed it; True when it wrote."""
    if not cache.has_state_changed:
        return False
    state: str = cache.serialize()  # clears has_state_changed
    try:
        vault.set(MSAL_CACHE_ENTRY, state)
    except BaseException:
        # Keep the change pending so the next save tries again.
        cache.has_state_changed = True
        raise
    return True


class MsalCacheStore:
    """The MSAL token cache bound to one vault: ``load()`` once, ``save()`` after each call."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def __repr__(self) -> str:
        return f"MsalCacheStore(vault={self._vault!r})"

    def load(self) -> msal.SerializableTokenCache:
        return load_cache(self._vault)

    def save(self, cache: msal.SerializableTokenCache) -> bool:
        return save_cache_if_changed(self._vault, cache)

    def clear(self) -> None:
        self._vault.delete(MSAL_CACHE_ENTRY)
