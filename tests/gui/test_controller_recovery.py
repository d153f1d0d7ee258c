"""Syncs that stop for a reason and go on: a lost sign-in (Sign in again), a Supabase outage
(waits for the connection), a metered network and a used-up data budget (Sync anyway)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QWidget
from test_controller_harness import Harness, configure, controller_harness, tenant_files

from celeste_desktop.auth.session import MsalSession
from celeste_desktop.engine.events import Paused, PauseReason
from celeste_desktop.gui.controller import Hooks, device_code_connect
from celeste_desktop.gui.engine_host import HostEvent
from celeste_desktop.net.policy import BackingOff
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack


class CountingConnect:
    """The device-code sign-in (auto-approved by the simulator), counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, parent: QWidget, session: MsalSession) -> bool:
        self.calls += 1
        return await device_code_connect(parent, session)


@pytest.fixture
def connect() -> CountingConnect:
    return CountingConnect()


@pytest.fixture
def harness(qapp: QApplication, sim: SimStack, sim_home: Path, connect: CountingConnect) -> Iterator[Harness]:
    with controller_harness(qapp, sim, sim_home, hooks=Hooks(connect=connect), quick_clock=True) as built:
        yield built


def record(harness: Harness) -> list[HostEvent]:
    seen: list[HostEvent] = []
    harness.controller.host.events.connect(seen.extend)
    return seen


def test_lost_sign_in_pauses_until_signed_in_again(harness: Harness, sim: SimStack, connect: CountingConnect) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    assert connect.calls == 1
    harness.tick("01_BRIDGE", "04_MANUALS")
    sim.faults.link = LinkShaper(300_000, 0.0)
    window.sync_button.click()
    harness.wait(lambda: harness.objects() >= 2, "the first objects in storage")
    sim.entra.revoke_refresh_tokens()
    sim.entra.expire_access_tokens()
    harness.wait(lambda: PauseReason.SIGN_IN in controller.presenter.reasons, "the sign-in pause")
    assert window.connection_label.text() == "Sign-in needed"
    assert "sign in again" in window.banner.text("sign_in").lower()
    button = window.banner.button("sign_in")
    assert button is not None and button.text() == "Sign in again"
    assert controller.sync.running, "the sync waits; it does not fail"
    button.click()
    harness.wait(lambda: PauseReason.SIGN_IN not in controller.presenter.reasons, "the sync to continue")
    assert connect.calls == 2
    harness.finish_sync()
    sim.faults.link = None
    expected = tenant_files(sim, "01_BRIDGE", "04_MANUALS")
    assert set(harness.rows()) == expected
    assert harness.objects() == len(expected)
    assert window.connection_label.text() == "Connected"


def test_supabase_outage_waits_for_the_connection_and_completes(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    seen = record(harness)
    harness.start_signed_in()
    harness.tick("01_BRIDGE")
    sim.faults.link = LinkShaper(200_000, 0.0)
    window.sync_button.click()
    harness.wait(lambda: harness.objects() >= 1, "the first object in storage")
    sim.faults.script("storage", "503", times=100_000)
    harness.wait(lambda: PauseReason.OFFLINE in controller.presenter.reasons, "the wait for the connection")
    assert window.connection_label.text() == "Offline — waiting for the connection"
    assert "Waiting for the connection" in window.banner.text("offline")
    assert any(isinstance(event, BackingOff) and event.service for event in seen), "retries were shown first"
    stored = harness.objects()
    harness.pump(0.5)
    assert harness.objects() == stored
    sim.faults.clear()  # the outage ends (and the slow link with it)
    harness.finish_sync()
    expected = tenant_files(sim, "01_BRIDGE")
    assert set(harness.rows()) == expected
    assert harness.objects() == len(expected)
    assert "offline" not in window.banner.shown()
    assert any(isinstance(event, Paused) and event.reason is PauseReason.OFFLINE for event in seen)
    assert "Completed" in window.summary.label.text()


def test_metered_network_waits_until_sync_anyway(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    harness.tick("01_BRIDGE")
    controller.set_metered(True)
    harness.wait(lambda: "metered" in window.banner.shown(), "the metered notice")
    window.sync_button.click()
    harness.pump(0.5)
    assert controller.sync.running and harness.objects() == 0, "nothing crosses a metered network"
    button = window.banner.button("metered")
    assert button is not None and button.text() == "Sync anyway"
    button.click()
    harness.finish_sync()
    assert set(harness.rows()) == tenant_files(sim, "01_BRIDGE")
    assert "metered" not in window.banner.shown()
    controller.set_metered(False)  # the override ends with the metered network
    assert not controller._metered_override


def test_used_up_budget_waits_until_sync_anyway(
    qapp: QApplication, sim: SimStack, sim_home: Path, connect: CountingConnect
) -> None:
    configure(sim_home, budget_daily_mb=1)
    with controller_harness(qapp, sim, sim_home, hooks=Hooks(connect=connect), quick_clock=True) as harness:
        window, controller = harness.window, harness.controller
        harness.start_signed_in()
        harness.tick("01_BRIDGE", "04_MANUALS")
        window.sync_button.click()
        harness.wait(lambda: PauseReason.BUDGET in controller.presenter.reasons, "the budget pause")
        button = window.banner.button("budget")
        assert button is not None and button.text() == "Sync anyway"
        assert "used" in window.banner.text("budget")
        button.click()
        harness.finish_sync()
        assert set(harness.rows()) == tenant_files(sim, "01_BRIDGE", "04_MANUALS")
