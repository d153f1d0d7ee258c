"""Pausing on metered networks, "Sync anyway" until the network changes, and never blocking blind."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from pytestqt.qtbot import QtBot

from celeste_desktop.gui.metered import MeteredWatch, QtNetworkBackend


class FakeNetwork:
    """A network the test moves around; implements ``NetworkBackend``."""

    def __init__(self, *, supported: bool = True, metered: bool = False, medium: str = "wifi") -> None:
        self.supported = supported
        self.metered = metered
        self.medium = medium
        self.listeners: list[Callable[[], None]] = []

    def supports_metered(self) -> bool:
        return self.supported

    def is_metered(self) -> bool:
        return self.metered

    def network_key(self) -> Hashable:
        return self.medium

    def subscribe(self, on_change: Callable[[], None]) -> None:
        self.listeners.append(on_change)

    def change(self, *, metered: bool | None = None, medium: str | None = None) -> None:
        if metered is not None:
            self.metered = metered
        if medium is not None:
            self.medium = medium
        for listener in self.listeners:
            listener()


class Recorder:
    def __init__(self, watch: MeteredWatch) -> None:
        self.metered: list[bool] = []
        self.pause: list[bool] = []
        watch.changed.connect(self.metered.append)
        watch.pause_changed.connect(self.pause.append)


def test_without_detection_it_never_blocks(qtbot: QtBot) -> None:
    network = FakeNetwork(supported=False, metered=True)
    watch = MeteredWatch(network)
    assert watch.supported is False
    assert watch.metered is False
    assert watch.should_pause is False
    assert network.listeners == [], "nothing to follow"


def test_a_metered_network_pauses_and_a_free_one_resumes(qtbot: QtBot) -> None:
    network = FakeNetwork(metered=True, medium="cellular")
    watch = MeteredWatch(network)
    seen = Recorder(watch)
    assert watch.supported and watch.metered and watch.should_pause
    network.change(metered=False, medium="ethernet")
    assert not watch.should_pause
    network.change(metered=True, medium="cellular")
    assert watch.should_pause
    assert seen.metered == [False, True]
    assert seen.pause == [False, True]


def test_sync_anyway_lasts_until_the_network_changes(qtbot: QtBot) -> None:
    network = FakeNetwork(metered=True, medium="wifi")
    watch = MeteredWatch(network)
    seen = Recorder(watch)
    watch.sync_anyway()
    assert watch.overridden and not watch.should_pause
    network.change()  # the same network reports again (a dropout and back on a satellite link)
    assert watch.overridden and not watch.should_pause
    network.change(medium="cellular")  # still metered, but another network: ask again
    assert not watch.overridden and watch.should_pause
    assert seen.pause == [False, True]
    assert seen.metered == [], "the network stayed metered throughout"


def test_leaving_and_returning_to_a_metered_network_asks_again(qtbot: QtBot) -> None:
    network = FakeNetwork(metered=True)
    watch = MeteredWatch(network)
    watch.sync_anyway()
    network.change(metered=False)
    network.change(metered=True)
    assert watch.should_pause and not watch.overridden


def test_sync_anyway_on_a_free_network_changes_nothing(qtbot: QtBot) -> None:
    network = FakeNetwork(metered=False)
    watch = MeteredWatch(network)
    watch.sync_anyway()
    assert not watch.overridden
    network.change(metered=True)
    assert watch.should_pause, "an earlier click does not pre-approve a later metered network"


def test_the_setting_turns_the_pause_off(qtbot: QtBot) -> None:
    network = FakeNetwork(metered=True)
    watch = MeteredWatch(network, enabled=False)
    seen = Recorder(watch)
    assert watch.metered and not watch.should_pause
    watch.set_enabled(True)
    watch.set_enabled(False)
    assert seen.pause == [True, False]


def test_the_real_backend_loads_or_reports_unsupported(qtbot: QtBot) -> None:
    watch = MeteredWatch(QtNetworkBackend.load())
    assert isinstance(watch.supported, bool)
    if not watch.supported:
        assert not watch.metered and not watch.should_pause
    assert watch.should_pause == (watch.supported and watch.metered)


def test_no_backend_at_all_is_unsupported(qtbot: QtBot) -> None:
    watch = MeteredWatch(QtNetworkBackend(None))
    assert (watch.supported, watch.metered, watch.should_pause) == (False, False, False)
