"""One running copy per user and data folder: a second launch hands over to the first and exits.

The first instance listens on a local socket (a Unix socket under the temp folder, a named
pipe on Windows) whose name is a hash of the user and the ``--home``/data folder, so two
portable installs on one PC run side by side and two users never meet. A second launch
connects, sends one line (its message, "show" by default) and should then exit with status 0;
the first emits ``activated(message)`` and the controller brings its window forward.

A socket file left behind by a crashed instance refuses connections; it is removed
(``QLocalServer.removeServer``) before listening. The connect-or-listen election runs under a
``QLockFile`` so two launches at the same moment cannot both become primary.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import re
import sys
from pathlib import Path

from PySide6.QtCore import QDir, QLockFile, QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 64 * 1024  # a launch message is a line of arguments, never more
DEFAULT_MESSAGE = "show"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in the environment (services, containers): use the uid
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


def server_name(app_id: str, home: str | Path | None) -> str:
    """A short socket name unique to (user, data folder); Unix socket paths must stay under ~100 bytes."""
    folder = os.path.normcase(str(Path(home).expanduser().resolve())) if home is not None else "<platform folders>"
    digest = hashlib.sha256(f"{_user()}\0{folder}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9]+", "-", app_id.lower()).strip("-")[:32] or "app"
    return f"{slug}-{digest}"


class SingleInstance(QObject):
    """Elects the primary instance; in it, ``activated`` fires when another launch pings."""

    activated = Signal(str)

    def __init__(
        self, app_id: str, home: str | Path | None, parent: QObject | None = None, *, timeout_ms: int = 1000
    ) -> None:
        super().__init__(parent)
        self.name = server_name(app_id, home)
        self._timeout_ms = timeout_ms
        self._server: QLocalServer | None = None
        self._incoming: dict[QLocalSocket, bytearray] = {}  # connections still sending their line

    @property
    def is_primary(self) -> bool:
        return self._server is not None

    def try_primary(self, message: str = DEFAULT_MESSAGE) -> bool:
        """True: this is the first instance (now listening). False: ``message`` went to the first; exit 0."""
        if self._server is not None:
            return True
        lock = QLockFile(str(Path(QDir.tempPath()) / f"{self.name}.lock"))
        locked = lock.tryLock(self._timeout_ms)
        if not locked:
            # Never refuse to start because of the lock: at worst two windows open.
            log.warning("single-instance lock busy (%s); continuing without it", lock.error())
        try:
            if self._deliver(message):
                return False
            # Connection refused with the name taken means a crashed instance left its socket.
            QLocalServer.removeServer(self.name)
            server = QLocalServer(self)
            server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
            if not server.listen(self.name):
                log.warning(
                    "cannot listen on %s (%s); running without single-instance", self.name, server.errorString()
                )
                return True
            server.newConnection.connect(self._accept)
            self._server = server
            return True
        finally:
            if locked:
                lock.unlock()

    def close(self) -> None:
        """Stop listening (also removes the Unix socket file)."""
        if self._server is not None:
            self._incoming.clear()
            self._server.close()
            self._server.deleteLater()
            self._server = None

    # -- internals -----------------------------------------------------------------------------

    def _deliver(self, message: str) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(self._timeout_ms):
            return False
        if sys.platform == "win32":
            import ctypes

            # Windows only lets the foreground process hand the foreground to another one.
            ctypes.windll.user32.AllowSetForegroundWindow(-1)  # ASFW_ANY
        line = message.replace("\n", " ").encode("utf-8")[: MESSAGE_LIMIT - 1] + b"\n"
        socket.write(line)
        socket.flush()
        socket.waitForBytesWritten(self._timeout_ms)
        socket.disconnectFromServer()
        if socket.state() is not QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(self._timeout_ms)
        return True

    def _accept(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            # Slots are methods reached through sender(), not closures over the socket: a closure
            # kept alive by the socket's own signal made PySide free the socket twice on deletion.
            self._incoming[connection] = bytearray()
            connection.readyRead.connect(self._on_ready_read)
            connection.disconnected.connect(self._on_disconnected)
            if connection.state() is QLocalSocket.LocalSocketState.UnconnectedState:
                self._finish(connection)  # the sender wrote and left before this slot ran
            else:
                self._take(connection)

    @Slot()
    def _on_ready_read(self) -> None:
        connection = self.sender()
        if isinstance(connection, QLocalSocket):
            self._take(connection)

    @Slot()
    def _on_disconnected(self) -> None:
        connection = self.sender()
        if isinstance(connection, QLocalSocket):
            self._finish(connection)

    def _take(self, connection: QLocalSocket) -> None:
        buffer = self._incoming.get(connection)
        if buffer is None:
            return
        buffer.extend(connection.readAll().data())
        if b"\n" in buffer or len(buffer) >= MESSAGE_LIMIT:
            self._finish(connection)

    def _finish(self, connection: QLocalSocket) -> None:
        buffer = self._incoming.pop(connection, None)
        if buffer is None:
            return
        buffer.extend(connection.readAll().data())
        if buffer:  # a connection that sent nothing is not a launch
            self.activated.emit(bytes(buffer).split(b"\n", 1)[0][:MESSAGE_LIMIT].decode("utf-8", "replace"))
        connection.disconnectFromServer()
        connection.deleteLater()


def bring_to_front(window: QWidget) -> None:
    """Show ``window`` (restoring it from minimised or the tray) and ask for the focus."""
    if window.isMinimized():
        window.showNormal()
    else:
        window.show()
    window.raise_()
    window.activateWindow()
