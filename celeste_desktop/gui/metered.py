"""Pause syncing on metered networks (phone tethering, pay-per-megabyte links), with "Sync anyway".

``MeteredWatch`` reads the OS's metered flag through ``QNetworkInformation`` (Windows Network
List Manager, macOS Network framework, Linux NetworkManager or GLib). Where no backend can
tell (offscreen CI, minimal Linux desktops) ``supported`` is False and the watch never asks
for a pause: the settings' bandwidth caps and data budget still protect the link.

"Sync anyway" lasts until the network changes: the transport medium changes (Wi-Fi to
cellular…) or the network stops being metered. Reachability is deliberately not a change:
a satellite link that drops out and comes back is the same network, and the person should
not be asked again after every dropout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Protocol

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)


class NetworkBackend(Protocol):
    """What the watch needs to know about the network; tests inject a fake."""

    def supports_metered(self) -> bool: ...

    def is_metered(self) -> bool: ...

    def network_key(self) -> Hashable:
        """A value that changes when the computer moves to another network."""
        ...

    def subscribe(self, on_change: Callable[[], None]) -> None: ...


class QtNetworkBackend:
    """``QNetworkInformation`` behind :class:`NetworkBackend`."""

    def __init__(self, info: QNetworkInformation | None) -> None:
        self._info = info

    @classmethod
    def load(cls) -> QtNetworkBackend:
        """Load a backend that can report metered networks, else the default one (needs a QCoreApplication)."""
        feature = QNetworkInformation.Feature.Metered
        if not QNetworkInformation.loadBackendByFeatures(feature) and not QNetworkInformation.loadDefaultBackend():
            log.info("no network-information backend: metered networks cannot be detected")
        info = QNetworkInformation.instance()
        if info is not None:
            log.info("network information from %s (metered: %s)", info.backendName(), info.supports(feature))
        return cls(info)

    def supports_metered(self) -> bool:
        return self._info is not None and self._info.supports(QNetworkInformation.Feature.Metered)

    def is_metered(self) -> bool:
        return self._info is not None and self._info.isMetered()

    def network_key(self) -> Hashable:
        return self._info.transportMedium() if self._info is not None else None

    def subscribe(self, on_change: Callable[[], None]) -> None:
        if self._info is not None:
            # Connected directly (Qt drops the signal's argument) so that a bound slot of a
            # QObject is disconnected when that object dies: the backend is process-wide.
            self._info.isMeteredChanged.connect(on_change)
            self._info.transportMediumChanged.connect(on_change)


class MeteredWatch(QObject):
    """Whether the network is metered and whether the sync should pause for it.

    ``changed(metered)`` follows the network; ``pause_changed(should_pause)`` follows the
    decision (metered, the "Pause on metered networks" setting, and "Sync anyway").
    """

    changed = Signal(bool)
    pause_changed = Signal(bool)

    def __init__(
        self, backend: NetworkBackend | None = None, *, enabled: bool = True, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._backend: NetworkBackend = backend if backend is not None else QtNetworkBackend.load()
        self.supported = self._backend.supports_metered()
        self._enabled = enabled
        self._overridden = False
        self._metered = self.supported and self._backend.is_metered()
        self._key = self._backend.network_key()
        self._should_pause = self._decide()
        if self.supported:
            self._backend.subscribe(self._on_network_change)

    @property
    def metered(self) -> bool:
        """The network is metered (always False where that cannot be detected)."""
        return self._metered

    @property
    def overridden(self) -> bool:
        """True once the person chose "Sync anyway" on this network."""
        return self._overridden

    @property
    def should_pause(self) -> bool:
        return self._should_pause

    def set_enabled(self, enabled: bool) -> None:
        """Follow the ``pause_on_metered`` setting."""
        self._enabled = enabled
        self._update_decision()

    def sync_anyway(self) -> None:
        """Let the sync use this metered network until the network changes."""
        if self._metered:
            self._overridden = True
            self._update_decision()

    def _decide(self) -> bool:
        return self.supported and self._enabled and self._metered and not self._overridden

    def _update_decision(self) -> None:
        decision = self._decide()
        if decision != self._should_pause:
            self._should_pause = decision
            self.pause_changed.emit(decision)

    @Slot()
    def _on_network_change(self) -> None:
        metered = self._backend.is_metered()
        key = self._backend.network_key()
        if key != self._key or not metered:
            self._overridden = False
        self._key = key
        if metered != self._metered:
            self._metered = metered
            self.changed.emit(metered)
        self._update_decision()
