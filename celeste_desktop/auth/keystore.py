"""Where the vault's Fernet key lives: the OS credential store, or (only when asked) a private file.

``choose_keystore`` maps the ``vault_backend`` setting to a key store. "auto" insists on a real
OS credential store (Windows Credential Manager, macOS Keychain, a Secret Service) and raises a
``VaultError`` naming the setting when there is none: the key never lands in a file unless the
person chose that.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from celeste_desktop.domain.errors import ConfigError, VaultError

log = logging.getLogger(__name__)

KEYRING_SERVICE = "CelesteOS Desktop"
VAULT_BACKENDS = ("auto", "keyring", "file")

# keyring calls a backend "recommended" from priority 1; below that are plaintext or null stores,
# which would be a silent plaintext fallback by another name.
_MIN_KEYRING_PRIORITY = 1.0
_PROBE_ACCOUNT = "availability-probe"
_STORE_UNAVAILABLE_TITLE = "No secure place for the sign-in key"


class KeyStore(Protocol):
    """Holds the one Fernet key that encrypts the vault."""

    def load(self) -> bytes | None:
        """The key, or None when none is stored. Raises VaultError when the store fails."""
        ...

    def store(self, key: bytes) -> None:
        """Save (or replace) the key. Raises VaultError when the store fails."""
        ...

    def delete(self) -> None:
        """Forget the key; no error when there is none."""
        ...

    def describe(self) -> str:
        """Where the key lives, for people: "Windows Credential Manager"."""
        ...


def account_for_folder(folder: Path) -> str:
    """A stable key-store account name for one app folder, so two ``--home`` installs differ.

    The path is hashed rather than used as is: some stores limit the account's length and
    characters, and the account is shown in the OS's credential manager.
    """
    normalised = os.path.normcase(os.path.abspath(folder))
    digest = hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:16]
    return f"vault-key-{digest}"


# ---------------------------------------------------------------------------------------------
# OS credential store


def _friendly_backend_name(backend: KeyringBackend) -> str:
    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        return _friendly_backend_name(chained[0]) if chained else "no credential store"
    module = type(backend).__module__
    if module.startswith("keyring.backends.Windows"):
        return "Windows Credential Manager"
    if module.startswith("keyring.backends.macOS"):
        return "macOS Keychain"
    if module.startswith(("keyring.backends.SecretService", "keyring.backends.libsecret")):
        return "Secret Service (GNOME Keyring or KWallet)"
    if module.startswith("keyring.backends.kwallet"):
        return "KWallet"
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else type(backend).__name__


def _backend_is_real_store(backend: KeyringBackend) -> bool:
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(_backend_is_real_store(chained) for chained in backend.backends)
    try:
        priority = float(backend.priority)
    except Exception:  # keyring backends signal "not viable here" by raising from priority
        return False
    return priority >= _MIN_KEYRING_PRIORITY


def detect_keyring_available() -> bool:
    """True when keyring has a real OS credential store that answers a read.

    Reads a name nobody stores, so nothing is written, and any failure (no D-Bus session, a
    locked or absent store) counts as unavailable.
    """
    try:
        backend = keyring.get_keyring()
        if not _backend_is_real_store(backend):
            return False
        backend.get_password(KEYRING_SERVICE, _PROBE_ACCOUNT)
    except Exception as error:  # any backend failure means "not usable", whatever its type
        log.info("OS credential store unavailable: %s", type(error).__name__)
        return False
    return True


class KeyringKeyStore:
    """The key in the OS credential store, under one service and a per-install account."""

    def __init__(self, *, service: str = KEYRING_SERVICE, account: str) -> None:
        self._service = service
        self._account = account

    def __repr__(self) -> str:
        return f"KeyringKeyStore(service={self._service!r}, account={self._account!r})"

    def describe(self) -> str:
        try:
            return _friendly_backend_name(keyring.get_keyring())
        except Exception:  # describing must never fail; it only feeds messages
            return "the OS credential store"

    def _failure(self, action: str, error: BaseException) -> VaultError:
        # Only the exception's type: backend messages are not ours to vouch for.
        return VaultError(
            f"{self.describe()} could not {action} the key that protects the saved sign-in "
            f"({type(error).__name__}). Unlock the credential store or sign in to the desktop "
            "session, then try again.",
            title="Credential store not reachable",
        )

    def load(self) -> bytes | None:
        try:
            value = keyring.get_password(self._service, self._account)
        except Exception as error:  # backends raise their own types (D-Bus, Win32, Security)
            raise self._failure("read", error) from None
        return value.encode("ascii", errors="replace") if value else None

    def store(self, key: bytes) -> None:
        try:
            keyring.set_password(self._service, self._account, key.decode("ascii"))
        except Exception as error:
            raise self._failure("save", error) from None

    def delete(self) -> None:
        try:
            keyring.delete_password(self._service, self._account)
        except keyring.errors.PasswordDeleteError:
            return  # nothing stored: already the state we want
        except Exception as error:
            raise self._failure("remove", error) from None


# ---------------------------------------------------------------------------------------------
# Private files


def _fsync_folder(folder: Path) -> None:
    # POSIX needs the folder synced for a rename to survive power loss; Windows cannot open one.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _restrict_to_current_user_windows(path: str) -> None:
    """Best effort: drop inherited ACEs and grant only the current user.

    The file already sits in the per-user profile, whose ACL admits only the user, SYSTEM and
    Administrators; this removes the inherited part too. A failure leaves the profile ACL.
    """
    if sys.platform != "win32":
        return
    user = os.environ.get("USERNAME")
    if not user:
        return
    domain = os.environ.get("USERDOMAIN")
    principal = f"{domain}\\{user}" if domain else user
    icacls = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / "icacls.exe"
    # Fixed program path and argument list, no shell: nothing here comes from outside input.
    result = subprocess.run(  # noqa: S603
        [str(icacls), path, "/inheritance:r", "/grant:r", f"{principal}:F"],
        check=False,
        capture_output=True,
        timeout=30,
    )
    if result.returncode != 0:
        log.warning("could not restrict %s to the current user; the profile ACL applies", path)


def _replace(source: str, target: Path) -> None:
    # Windows refuses a replace while another program (often a virus scanner) has the target
    # open; that passes within moments, so retry briefly before giving up.
    attempts = 5 if os.name == "nt" else 1
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, readable only by this user.

    Writes a temporary file in the same folder (0600 on POSIX), flushes and fsyncs it, renames
    it over the target and fsyncs the folder. A crash leaves the old file or the new one, and
    at worst a stray ``.<name>.*.tmp`` beside it.
    """
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _restrict_to_current_user_windows(temp_name)
        _replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_folder(folder)


def stray_temp_files(path: Path) -> list[Path]:
    """Temporary files a crashed ``write_private_file`` may have left beside ``path``."""
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


class FileKeyStore:
    """The key in a file only this user may read: the explicit fallback where no store exists.

    On POSIX the file is 0600 in a 0700 folder, and a looser mode found on load is tightened.
    On Windows it lives in the per-user profile (its ACL admits only the user, SYSTEM and
    Administrators) and inheritance is removed on a best-effort basis.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def __repr__(self) -> str:
        return f"FileKeyStore(path={str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    def describe(self) -> str:
        return f"a key file readable only by this user ({self._path})"

    def load(self) -> bytes | None:
        try:
            with open(self._path, "rb") as handle:
                self._tighten_mode(handle.fileno())
                key = handle.read().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise VaultError(
                f"The key file could not be read ({error.strerror}). Check its permissions.",
                title="Key file not readable",
                path=str(self._path),
            ) from None
        return key or None

    def _tighten_mode(self, fd: int) -> None:
        if os.name != "posix":
            return
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            log.warning("key file %s was mode %o; restricting it to 0600", self._path, mode)
            os.fchmod(fd, 0o600)

    def store(self, key: bytes) -> None:
        try:
            write_private_file(self._path, key)
        except OSError as error:
            raise VaultError(
                f"The key file could not be written ({error.strerror}). "
                "Check the folder's permissions and free space.",
                title="Key file not writable",
                path=str(self._path),
            ) from None

    def delete(self) -> None:
        try:
            self._path.unlink(missing_ok=True)
        except OSError as error:
            raise VaultError(
                f"The key file could not be removed ({error.strerror}).",
                title="Key file not removable",
                path=str(self._path),
            ) from None


def choose_keystore(backend: str, *, key_file: Path, account: str) -> KeyStore:
    """The key store the ``vault_backend`` setting asks for; never a silent fallback."""
    if backend == "file":
        return FileKeyStore(key_file)
    if backend not in ("auto", "keyring"):
        raise ConfigError("vault_backend", f"must be one of {', '.join(VAULT_BACKENDS)}.")
    if not detect_keyring_available():
        raise VaultError(
            "No OS credential store was found (Windows Credential Manager, macOS Keychain, or "
            "a Secret Service such as GNOME Keyring) to hold the key that encrypts the saved "
            "sign-in. To keep that key in a file readable only by this user instead, run "
            "`celeste-desktop config set vault_backend file` or accept the warning dialog in "
            "the app.",
            title=_STORE_UNAVAILABLE_TITLE,
        )
    return KeyringKeyStore(account=account)
