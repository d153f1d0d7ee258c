"""The encrypted vault and its key stores: secrecy at rest, recovery from damage, sharing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import keyring
import msal
import pytest
from cryptography.fernet import Fernet
from filelock import FileLock
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from celeste_desktop.auth.keystore import (
    FileKeyStore,
    KeyringKeyStore,
    account_for_folder,
    choose_keystore,
    detect_keyring_available,
)
from celeste_desktop.auth.vault import (
    MSAL_CACHE_ENTRY,
    MsalCacheStore,
    Vault,
    load_cache,
    save_cache_if_changed,
)
from celeste_desktop.domain.errors import ConfigError, VaultError

if TYPE_CHECKING:
    # Annotations only: the fakes reach tests as fixtures.
    from .conftest import InMemoryKeyring, MemoryKeyStore

MSAL_STATE_SECRET = "0.AAAA-refresh-token-secret-ZZZZ"
SUPABASE_KEY = "sb_secret_very_private_project_key_123456"
SALT = "digest-salt-3f9a1c77"
FIXED_NOW = datetime(2026, 11, 25, 20, 15, 0, tzinfo=UTC)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "vault.bin"


@pytest.fixture
def vault(vault_path: Path, memory_keystore: MemoryKeyStore) -> Vault:
    return Vault(vault_path, memory_keystore, clock=lambda: FIXED_NOW)


def fill(vault: Vault) -> None:
    vault.set("supabase_key", SUPABASE_KEY)
    vault.set("digest_salt", SALT)
    vault.set(MSAL_CACHE_ENTRY, json.dumps({"RefreshToken": {"x": {"secret": MSAL_STATE_SECRET}}}))


def moved_aside(vault_path: Path) -> list[Path]:
    return sorted(vault_path.parent.glob(f"{vault_path.name}.bad-*"))


def assert_clear_unreadable_error(error: VaultError) -> None:
    assert error.title == "Saved sign-in could not be read"
    assert "could not be read" in error.message
    assert "connect again" in error.message
    for secret in (SUPABASE_KEY, SALT, MSAL_STATE_SECRET):
        assert secret not in str(error)
        assert secret not in repr(error)
    # Nothing from the decoder (which holds the plaintext) is chained to the error.
    assert error.__context__ is None
    assert error.__cause__ is None


# -- basic behaviour ---------------------------------------------------------------------------


def test_round_trip(vault: Vault) -> None:
    assert vault.get("supabase_key") is None
    fill(vault)
    assert vault.get("supabase_key") == SUPABASE_KEY
    assert vault.get("digest_salt") == SALT
    assert vault.names() == ["digest_salt", MSAL_CACHE_ENTRY, "supabase_key"]
    vault.set("supabase_key", "replaced")
    assert vault.get("supabase_key") == "replaced"
    vault.delete("supabase_key")
    vault.delete("never-there")
    assert vault.get("supabase_key") is None
    assert vault.names() == ["digest_salt", MSAL_CACHE_ENTRY]


def test_persists_across_instances(vault_path: Path, memory_keystore: MemoryKeyStore) -> None:
    fill(Vault(vault_path, memory_keystore))
    again = Vault(vault_path, memory_keystore)
    assert again.get("supabase_key") == SUPABASE_KEY
    assert again.get("digest_salt") == SALT


def test_reading_creates_no_key_and_no_file(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    assert vault.get("supabase_key") is None
    assert vault.names() == []
    vault.delete("supabase_key")
    assert memory_keystore.key is None
    assert memory_keystore.stores == 0
    assert not vault_path.parent.exists()


def test_key_made_once_on_first_write(vault: Vault, memory_keystore: MemoryKeyStore) -> None:
    vault.set("a", "1")
    vault.set("b", "2")
    assert memory_keystore.stores == 1


def test_nothing_secret_on_disk(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    fill(vault)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            for secret in (SUPABASE_KEY, SALT, MSAL_STATE_SECRET, "supabase_key", "digest_salt"):
                assert secret.encode() not in data, f"{secret!r} found in {file.name}"


def test_repr_reveals_no_secret(vault: Vault, memory_keystore: MemoryKeyStore) -> None:
    fill(vault)
    assert memory_keystore.key is not None
    for text in (repr(vault), str(vault), repr(MsalCacheStore(vault))):
        assert memory_keystore.key.decode() not in text
        assert SUPABASE_KEY not in text
        assert "vault.bin" in text or "Vault" in text


def test_empty_name_refused(vault: Vault) -> None:
    with pytest.raises(ValueError):
        vault.set("", "x")


# -- damaged vaults ----------------------------------------------------------------------------


def test_tampered_byte_moves_file_aside_and_vault_recovers(vault: Vault, vault_path: Path) -> None:
    fill(vault)
    original = vault_path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    vault_path.write_bytes(bytes(damaged))

    with pytest.raises(VaultError) as caught:
        vault.get("supabase_key")

    assert_clear_unreadable_error(caught.value)
    aside = moved_aside(vault_path)
    assert [p.name for p in aside] == ["vault.bin.bad-20261125T201500Z"]
    assert aside[0].read_bytes() == bytes(damaged)  # kept as found, never deleted
    assert aside[0].name in caught.value.message
    assert not vault_path.exists()
    # Behaves as empty now, and the next connect can save again.
    assert vault.get("supabase_key") is None
    vault.set("supabase_key", "fresh")
    assert vault.get("supabase_key") == "fresh"


def test_truncated_file(vault: Vault, vault_path: Path) -> None:
    fill(vault)
    vault_path.write_bytes(vault_path.read_bytes()[:40])
    with pytest.raises(VaultError) as caught:
        vault.names()
    assert_clear_unreadable_error(caught.value)
    assert len(moved_aside(vault_path)) == 1
    assert vault.names() == []


def test_empty_file(vault: Vault, vault_path: Path) -> None:
    fill(vault)
    vault_path.write_bytes(b"")
    with pytest.raises(VaultError):
        vault.get("digest_salt")
    assert vault.get("digest_salt") is None


def test_key_store_lost_its_key(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    fill(vault)
    old_key = memory_keystore.key
    memory_keystore.delete()

    with pytest.raises(VaultError) as caught:
        vault.get("supabase_key")

    assert_clear_unreadable_error(caught.value)
    assert "the test key store" in caught.value.message
    assert len(moved_aside(vault_path)) == 1
    vault.set("supabase_key", "fresh")
    assert memory_keystore.key is not None
    assert memory_keystore.key != old_key
    assert vault.get("supabase_key") == "fresh"


def test_wrong_key(vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore) -> None:
    fill(vault)
    memory_keystore.key = Fernet.generate_key()
    with pytest.raises(VaultError) as caught:
        vault.get("supabase_key")
    assert_clear_unreadable_error(caught.value)
    assert len(moved_aside(vault_path)) == 1


def test_malformed_key(vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore) -> None:
    fill(vault)
    memory_keystore.key = b"not a fernet key"
    with pytest.raises(VaultError):
        vault.get("supabase_key")
    assert len(moved_aside(vault_path)) == 1
    vault.set("a", "1")  # a malformed key is replaced on the next write
    assert vault.get("a") == "1"


@pytest.mark.parametrize(
    "plaintext",
    [b"not json", b"\xff\xfe", b"[1, 2]", b'{"format": 1, "secrets": {"a": 3}}', b'{"format": 0}'],
)
def test_decrypts_but_makes_no_sense(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore, plaintext: bytes
) -> None:
    vault.set("a", "1")
    assert memory_keystore.key is not None
    vault_path.write_bytes(Fernet(memory_keystore.key).encrypt(plaintext))
    with pytest.raises(VaultError) as caught:
        vault.get("a")
    assert "connect again" in caught.value.message
    assert caught.value.__context__ is None
    assert len(moved_aside(vault_path)) == 1


def test_newer_format_is_left_in_place(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    vault.set("a", "1")
    assert memory_keystore.key is not None
    vault_path.write_bytes(
        Fernet(memory_keystore.key).encrypt(b'{"format": 99, "secrets": {"a": "1"}}')
    )
    with pytest.raises(VaultError) as caught:
        vault.get("a")
    assert "newer version" in caught.value.message
    assert vault_path.exists()
    assert moved_aside(vault_path) == []


def test_second_bad_file_in_same_second_gets_its_own_name(vault: Vault, vault_path: Path) -> None:
    for _ in range(2):
        vault.set("a", "1")
        vault_path.write_bytes(b"garbage")
        with pytest.raises(VaultError):
            vault.get("a")
    assert [p.name for p in moved_aside(vault_path)] == [
        "vault.bin.bad-20261125T201500Z",
        "vault.bin.bad-20261125T201500Z-1",
    ]


# -- atomic writes and sharing -----------------------------------------------------------------


def test_crash_before_replace_leaves_old_vault(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(vault)
    before = vault_path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(VaultError) as caught:
        vault.set("supabase_key", "half-written")
    monkeypatch.undo()

    assert caught.value.title == "Sign-in not saved"
    assert "No space left on device" in caught.value.message
    assert "half-written" not in str(caught.value)
    assert vault_path.read_bytes() == before
    assert Vault(vault_path, memory_keystore).get("supabase_key") == SUPABASE_KEY
    assert sorted(p.name for p in vault_path.parent.iterdir() if p.name.endswith(".tmp")) == []


_WRITER = """
import sys
from pathlib import Path
from celeste_desktop.auth.keystore import FileKeyStore
from celeste_desktop.auth.vault import Vault

folder, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
vault = Vault(folder / "vault.bin", FileKeyStore(folder / "vault.key"))
for index in range(count):
    vault.set(f"{prefix}-{index}", f"value-{prefix}-{index}")
"""


def test_two_processes_write_different_names(tmp_path: Path) -> None:
    count = 15
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), prefix, str(count)])
        for prefix in ("gui", "cli")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    vault = Vault(tmp_path / "vault.bin", FileKeyStore(tmp_path / "vault.key"))
    expected = {f"{prefix}-{index}" for prefix in ("gui", "cli") for index in range(count)}
    assert set(vault.names()) == expected
    assert vault.get("cli-3") == "value-cli-3"


def test_reads_see_another_instances_writes(
    vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    first = Vault(vault_path, memory_keystore)
    second = Vault(vault_path, memory_keystore)
    first.set("a", "1")
    assert second.get("a") == "1"
    second.set("b", "2")
    assert first.names() == ["a", "b"]


def test_busy_lock_gives_a_clear_error(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    vault.set("a", "1")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with FileLock(f"{vault_path}.lock"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(10)
        busy = Vault(vault_path, memory_keystore, lock_timeout=0.05)
        with pytest.raises(VaultError) as caught:
            busy.get("a")
        assert caught.value.title == "Saved sign-in is busy"
    finally:
        release.set()
        holder.join()


# -- wipe --------------------------------------------------------------------------------------


def test_wipe_removes_file_key_and_temp_copies(
    vault: Vault, vault_path: Path, memory_keystore: MemoryKeyStore
) -> None:
    fill(vault)
    stray = vault_path.parent / ".vault.bin.abc123.tmp"
    stray.write_bytes(b"left by a crash")
    bad = vault_path.parent / "vault.bin.bad-20260101T000000Z"
    bad.write_bytes(b"moved aside earlier")

    vault.wipe()

    assert not vault_path.exists()
    assert not stray.exists()
    assert memory_keystore.key is None
    assert bad.exists()  # kept for support; its key is gone with the wipe
    assert vault.get("supabase_key") is None
    assert memory_keystore.key is None  # reading after a wipe does not make a new key


def test_wipe_with_nothing_saved(vault: Vault, memory_keystore: MemoryKeyStore) -> None:
    memory_keystore.key = Fernet.generate_key()
    vault.wipe()
    assert memory_keystore.key is None


def test_wipe_with_file_key_store(tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    vault = Vault(tmp_path / "vault.bin", FileKeyStore(key_file))
    vault.set("a", "1")
    assert key_file.exists()
    vault.wipe()
    assert not key_file.exists()
    assert not (tmp_path / "vault.bin").exists()


# -- key stores --------------------------------------------------------------------------------


@posix_only
def test_file_key_store_is_private(tmp_path: Path) -> None:
    key_file = tmp_path / "fresh" / "vault.key"
    store = FileKeyStore(key_file)
    key = Fernet.generate_key()
    store.store(key)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    assert store.load() == key
    store.store(Fernet.generate_key())  # replacing keeps the mode
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@posix_only
def test_vault_file_is_private(vault: Vault, vault_path: Path) -> None:
    vault.set("a", "1")
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600


@posix_only
def test_file_key_store_tightens_a_loose_mode(tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o644)
    assert FileKeyStore(key_file).load() is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_file_key_store_missing_and_delete(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "vault.key")
    assert store.load() is None
    store.delete()
    assert "readable only by this user" in store.describe()


def test_keyring_key_store_round_trip(fake_keyring: InMemoryKeyring) -> None:
    store = KeyringKeyStore(account="vault-key-test")
    assert store.load() is None
    key = Fernet.generate_key()
    store.store(key)
    assert store.load() == key
    assert fake_keyring.passwords == {("CelesteOS Desktop", "vault-key-test"): key.decode()}
    store.delete()
    store.delete()  # already gone: no error
    assert store.load() is None
    assert key.decode() not in repr(store)


def test_vault_on_keyring_two_homes_do_not_share(
    fake_keyring: InMemoryKeyring, tmp_path: Path
) -> None:
    homes = [tmp_path / "one", tmp_path / "two"]
    vaults = [
        Vault(home / "vault.bin", KeyringKeyStore(account=account_for_folder(home)))
        for home in homes
    ]
    vaults[0].set("a", "1")
    vaults[1].set("a", "2")
    assert [v.get("a") for v in vaults] == ["1", "2"]
    assert len(fake_keyring.passwords) == 2
    vaults[0].wipe()
    assert len(fake_keyring.passwords) == 1
    assert vaults[1].get("a") == "2"


def test_account_is_stable_and_per_folder(tmp_path: Path) -> None:
    assert account_for_folder(tmp_path / "a") == account_for_folder(tmp_path / "a")
    assert account_for_folder(tmp_path / "a") != account_for_folder(tmp_path / "b")
    assert str(tmp_path) not in account_for_folder(tmp_path / "a")


def test_keyring_failure_becomes_vault_error(use_keyring: None) -> None:
    keyring.set_keyring(fail.Keyring())
    store = KeyringKeyStore(account="x")
    with pytest.raises(VaultError) as caught:
        store.load()
    assert caught.value.title == "Credential store not reachable"
    assert "NoKeyringError" in caught.value.message


def test_detects_fake_keyring_without_writing(fake_keyring: InMemoryKeyring) -> None:
    assert detect_keyring_available()
    assert fake_keyring.reads == 1
    assert fake_keyring.passwords == {}


class _EmptyChainer(chainer.ChainerBackend):
    backends: list[object] = []  # noqa: RUF012 - mirrors keyring's class-level property


chainer.ChainerBackend._classes.discard(_EmptyChainer)


class _BrokenKeyring(KeyringBackend):
    """Looks like a real store but fails on use, like Secret Service without a D-Bus session."""

    priority = 5.0

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")


KeyringBackend._classes.discard(_BrokenKeyring)


@pytest.mark.parametrize(
    "backend",
    [fail.Keyring(), null.Keyring(), _EmptyChainer(), _BrokenKeyring()],
    ids=["fail", "null", "empty-chainer", "probe-raises"],
)
def test_auto_without_a_credential_store_says_how_to_proceed(
    use_keyring: None, tmp_path: Path, backend: KeyringBackend
) -> None:
    keyring.set_keyring(backend)
    assert not detect_keyring_available()
    for choice in ("auto", "keyring"):
        with pytest.raises(VaultError) as caught:
            choose_keystore(choice, key_file=tmp_path / "vault.key", account="x")
        assert "No OS credential store was found" in caught.value.message
        assert "celeste-desktop config set vault_backend file" in caught.value.message
    assert not (tmp_path / "vault.key").exists()  # never a silent fallback to a file


def test_choose_keystore(fake_keyring: InMemoryKeyring, tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    assert isinstance(choose_keystore("auto", key_file=key_file, account="x"), KeyringKeyStore)
    assert isinstance(choose_keystore("keyring", key_file=key_file, account="x"), KeyringKeyStore)
    chosen = choose_keystore("file", key_file=key_file, account="x")
    assert isinstance(chosen, FileKeyStore)
    assert chosen.path == key_file
    with pytest.raises(ConfigError) as caught:
        choose_keystore("plaintext", key_file=key_file, account="x")
    assert caught.value.setting == "vault_backend"


# -- MSAL token cache --------------------------------------------------------------------------


def _token_event() -> dict[str, object]:
    return {
        "client_id": "client-id",
        "scope": ["User.Read"],
        "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "response": {
            "access_token": "access-token-secret",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": MSAL_STATE_SECRET,
        },
        "params": {},
        "data": {},
    }


def test_msal_cache_round_trip(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    cache = load_cache(vault)
    assert not save_cache_if_changed(vault, cache)  # unchanged: nothing written
    assert not vault_path.exists()

    cache.add(_token_event())
    assert save_cache_if_changed(vault, cache)
    assert not cache.has_state_changed
    assert not save_cache_if_changed(vault, cache)

    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert MSAL_STATE_SECRET.encode() not in file.read_bytes()
            assert b"access-token-secret" not in file.read_bytes()
    reloaded = MsalCacheStore(vault).load()
    tokens = list(reloaded.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))
    assert [token["secret"] for token in tokens] == [MSAL_STATE_SECRET]


def test_msal_cache_failed_save_stays_pending(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = load_cache(vault)
    cache.add(_token_event())

    def crash(src: object, dst: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(VaultError):
        save_cache_if_changed(vault, cache)
    monkeypatch.undo()
    assert cache.has_state_changed
    assert save_cache_if_changed(vault, cache)


def test_msal_cache_unreadable_entry_is_dropped(vault: Vault) -> None:
    vault.set(MSAL_CACHE_ENTRY, "[not a cache")
    vault.set("supabase_key", SUPABASE_KEY)
    with pytest.raises(VaultError) as caught:
        load_cache(vault)
    assert "connect again" in caught.value.message
    assert vault.names() == ["supabase_key"]
    assert len(list(load_cache(vault).search(msal.TokenCache.CredentialType.REFRESH_TOKEN))) == 0


def test_msal_cache_store_clear(vault: Vault) -> None:
    store = MsalCacheStore(vault)
    cache = store.load()
    cache.add(_token_event())
    assert store.save(cache)
    store.clear()
    assert vault.get(MSAL_CACHE_ENTRY) is None
