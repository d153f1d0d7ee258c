"""The Connect dialog against the simulated Entra ID: device code with the QR code and Copy,
Cancel and timeouts that return at once, administrator approval, a wrong setting, and the
Disconnect confirmation."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import qasync
import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from test_controller_harness import close_qasync_loop

from celeste_desktop.auth.errors import AdminConsentRequired
from celeste_desktop.auth.session import MsalSession
from celeste_desktop.cli.auth_cmd import open_session
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings, save_settings
from celeste_desktop.domain.errors import ConfigError, ServiceUnavailable
from celeste_desktop.gui.connect_dialog import (
    ConnectDialog,
    DisconnectBox,
    ask_disconnect,
    confirm_disconnect,
    describe_problem,
)
from celeste_desktop.gui.qr import qr_matrix
from celeste_desktop.sim.stack import SimStack

T = TypeVar("T")

OFFICER = "it.officer@mysimyacht.onmicrosoft.com"
CHOOSE, BROWSER, DEVICE, DONE, PROBLEM = range(5)


@contextmanager
def qasync_loop(app: QApplication) -> Iterator[qasync.QEventLoop]:
    """asyncio on the Qt loop, as the app runs; tasks left over are cancelled and awaited."""
    # Closing the last dialog would quit the app and stop the loop; the main window prevents it.
    quits = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    event_loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(event_loop)
    try:
        yield event_loop
    finally:
        app.setQuitOnLastWindowClosed(quits)
        pending = [task for task in asyncio.all_tasks(event_loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        close_qasync_loop(event_loop)
        # qasync leaves its timer object with Qt timers still registered (a cancelled
        # ``call_later`` keeps its timer until it fires). Deleted here, on the GUI thread, they
        # are unregistered; left to the garbage collector, the object may be freed on another
        # thread (the engine's, in later tests) and a timer then fires on freed memory.
        shiboken6.delete(event_loop._timer)
        # Collect this test's Qt wrappers now, on the GUI thread, rather than at a random moment
        # of a later test (possibly on another thread, and as a pause in a timing test).
        gc.collect()


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as event_loop:
        yield event_loop


def run(loop: qasync.QEventLoop, awaitable: Awaitable[T], timeout: float = 15) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(awaitable, timeout)

    result: T = loop.run_until_complete(bounded())
    return result


async def until(condition: Callable[[], object], seconds: float = 10) -> None:
    """Poll a widget's state (Qt gives no awaitable for it) until true, or fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
def session(sim_home: Path) -> Iterator[MsalSession]:
    session = open_session(CliContext(paths=AppPaths.resolve(sim_home)))
    yield session
    session.close()


def make_dialog(qtbot: QtBot, session: MsalSession, **options: object) -> ConnectDialog:
    dialog = ConnectDialog(session, **options)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def test_device_code_sign_in_shows_code_address_qr_and_copy(
    qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession, sim: SimStack, qapp: QApplication
) -> None:
    dialog = make_dialog(qtbot, session)

    async def scenario() -> object:
        running = asyncio.ensure_future(dialog.run())
        await until(dialog.isVisible)
        dialog.device_button.click()
        await until(dialog.code.text)
        code, address = dialog.code.text(), dialog.address.text()
        assert code in sim.entra.pending_user_codes()
        assert address.endswith("/devicelogin")
        assert dialog.qr.text() == address and dialog.qr.matrix() == qr_matrix(address)
        assert dialog.qr.accessibleName() and "phone" in dialog.qr.accessibleDescription()
        dialog.copy_code.click()
        assert qapp.clipboard().text() == code
        dialog.copy_address.click()
        assert qapp.clipboard().text() == address
        assert "works until" in dialog.expiry.text()
        await until(lambda: dialog.current_page() == DONE)  # auto-consent on the second poll
        assert OFFICER in dialog.account_label.text() and sim.entra.tenant_id in dialog.account_label.text()
        dialog.close_button.click()
        return await running

    account = run(loop, scenario())

    assert account is not None and account == session.current_account()


def test_browser_sign_in_cancel_returns_at_once(qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession) -> None:
    opened: list[str] = []

    def open_browser(url: str) -> bool:
        opened.append(url)  # the tab opens and the person looks at it
        return True

    dialog = make_dialog(qtbot, session, open_browser=open_browser)

    async def scenario() -> object:
        running = asyncio.ensure_future(dialog.run())
        await until(dialog.isVisible)
        dialog.browser_button.click()
        assert dialog.current_page() == BROWSER
        await until(lambda: opened)
        started = time.monotonic()
        dialog.cancel_button.click()  # the person gives up; the browser tab stays open
        await until(lambda: not dialog.signing_in())
        assert time.monotonic() - started < 0.5
        assert dialog.current_page() == CHOOSE and dialog.note.isHidden()  # back quietly
        dialog.cancel_button.click()  # now closes the dialog
        return await running

    assert run(loop, scenario()) is None
    assert session.current_account() is None


def test_closing_the_window_during_sign_in_ends_it(
    qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession, sim: SimStack
) -> None:
    sim.entra.auto_consent = False  # nobody enters the code
    dialog = make_dialog(qtbot, session)

    async def scenario() -> object:
        running = asyncio.ensure_future(dialog.run())
        await until(dialog.isVisible)
        dialog.device_button.click()
        await until(dialog.code.text)
        started = time.monotonic()
        dialog.reject()  # Escape or the window's close button
        result = await running
        assert time.monotonic() - started < 0.5
        return result

    assert run(loop, scenario()) is None


def test_closed_browser_times_out_back_to_the_choice(
    qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession
) -> None:
    dialog = make_dialog(qtbot, session, browser_timeout=0.2, open_browser=lambda _url: True)

    async def scenario() -> None:
        dialog.show()
        dialog.start_browser()
        await until(lambda: dialog.current_page() == CHOOSE and not dialog.signing_in())

    run(loop, scenario())

    assert dialog.note.isVisibleTo(dialog) and "not finished within" in dialog.note.text()


def test_no_browser_shows_the_address_to_open(qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession) -> None:
    dialog = make_dialog(qtbot, session, open_browser=lambda _url: False)

    async def scenario() -> None:
        dialog.show()
        dialog.start_browser()
        await until(dialog.browser_url.text)
        dialog.cancel()

    run(loop, scenario())

    assert dialog.browser_url.text().startswith(session.settings.authority_url)
    assert "No browser could be opened" in dialog.browser_failed.text()


def test_admin_approval_shows_what_to_send(
    qtbot: QtBot, loop: qasync.QEventLoop, session: MsalSession, sim: SimStack, qapp: QApplication
) -> None:
    sim.entra.require_consent("admin")
    dialog = make_dialog(qtbot, session)

    async def scenario() -> None:
        dialog.show()
        dialog.start_device_code()
        await until(lambda: dialog.current_page() == PROBLEM)

    run(loop, scenario())

    assert "administrator" in dialog.problem_text.text()
    sent = dialog.admin_text.toPlainText()
    settings = session.settings
    assert f"{settings.effective_authority}/{settings.tenant}/adminconsent?client_id={settings.client_id}" in sent
    assert "Files.Read.All, User.Read, Sites.Read.All" in sent
    assert dialog.admin_text.isVisibleTo(dialog) and dialog.again_button.isVisibleTo(dialog)
    dialog.copy_admin.click()
    assert qapp.clipboard().text() == sent
    assert dialog.account is None


def test_a_wrong_client_id_names_the_setting(
    qtbot: QtBot, loop: qasync.QEventLoop, sim_home: Path, sim: SimStack
) -> None:
    paths = AppPaths.resolve(sim_home)
    save_settings(
        paths.settings_file,
        load_settings(paths.settings_file).replace(client_id="00000000-1111-2222-3333-444444444444"),
    )
    session = open_session(CliContext(paths=paths))
    dialog = make_dialog(qtbot, session)

    async def scenario() -> None:
        dialog.show()
        dialog.start_device_code()
        await until(lambda: dialog.current_page() == PROBLEM)

    try:
        run(loop, scenario())
    finally:
        session.close()

    text = dialog.problem_text.text()
    assert "“client_id”" in text and "Settings → Network" in text and "00000000-1111" in text
    assert dialog.admin_text.isHidden()
    dialog.again_button.click()
    assert dialog.current_page() == CHOOSE


def test_problem_descriptions() -> None:
    consent = describe_problem(
        AdminConsentRequired(
            "approve",
            admin_consent_url="https://login.example/t/adminconsent?client_id=abc",
            permissions=("Files.Read.All", "User.Read"),
        )
    )
    assert consent.for_admin is not None and "client) id: abc" in consent.for_admin
    tenant = describe_problem(ConfigError("tenant", "unknown tenant"))
    assert tenant.setting == "tenant" and "Tenant" in tenant.message
    offline = describe_problem(ServiceUnavailable("Microsoft sign-in could not be reached: check the link."))
    assert offline.for_admin is None and "could not be reached" in offline.message


def test_confirm_disconnect_explains_and_defaults_to_cancel(qtbot: QtBot, qapp: QApplication) -> None:
    box = DisconnectBox()
    qtbot.addWidget(box)
    assert "wipes every secret" in box.text() and "yacht key" in box.text()
    assert box.defaultButton() is box.cancel_button and box.escapeButton() is box.cancel_button

    def answer(confirm: bool) -> Callable[[], None]:
        def click() -> None:
            shown = [w for w in qapp.topLevelWidgets() if isinstance(w, DisconnectBox) and w.isVisible()]
            assert shown
            (shown[0].disconnect_button if confirm else shown[0].cancel_button).click()

        return click

    QTimer.singleShot(0, answer(True))
    assert confirm_disconnect() is True
    QTimer.singleShot(0, answer(False))
    assert confirm_disconnect() is False


def test_ask_disconnect_without_a_nested_loop(qtbot: QtBot, loop: qasync.QEventLoop, qapp: QApplication) -> None:
    async def scenario() -> bool:
        asking = asyncio.ensure_future(ask_disconnect())
        await until(lambda: any(isinstance(w, DisconnectBox) and w.isVisible() for w in qapp.topLevelWidgets()))
        box = next(w for w in qapp.topLevelWidgets() if isinstance(w, DisconnectBox) and w.isVisible())
        box.disconnect_button.click()
        return await asking

    assert run(loop, scenario()) is True
