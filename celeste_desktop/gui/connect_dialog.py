"""The Connect dialog: sign in to Microsoft 365 in this PC's browser, or with a code on another
device (a phone will do, through the QR code), and the Disconnect confirmation.

The sign-in runs as a task on the qasync loop (MSAL's blocking calls go to worker threads inside
``auth.flows``), so the window never freezes; Cancel goes through a ``CancelToken`` and returns
at once. What went wrong is explained in words, with what to do: an administrator's approval
(and the link to send them), a wrong setting, or no connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCommandLinkButton,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop.auth.errors import AdminConsentRequired
from celeste_desktop.auth.flows import CancelToken, DeviceCodePrompt
from celeste_desktop.auth.session import Account
from celeste_desktop.domain.errors import CelesteError, ConfigError, SignInCancelled
from celeste_desktop.gui.qr import QrCodeWidget
from celeste_desktop.gui.settings_dialog import fit_to_text, show_modal

__all__ = [
    "ConnectDialog",
    "DisconnectBox",
    "Problem",
    "SignInSession",
    "ask_disconnect",
    "confirm_disconnect",
    "describe_problem",
    "sign_in_dialog",
]

log = logging.getLogger(__name__)

_SETTING_PLACES = {
    "client_id": "Settings → Network → Microsoft 365 (Application (client) id)",
    "tenant": "Settings → Network → Microsoft 365 (Tenant)",
    "authority": "Settings → Network → Microsoft 365 (National cloud, Sign-in host)",
    "proxy": "Settings → Network (Proxy)",
    "ca_bundle": "Settings → Network (CA bundle)",
}


class SignInSession(Protocol):
    """The two sign-ins of ``auth.session.MsalSession`` the dialog uses."""

    async def sign_in_interactive(
        self,
        *,
        cancel: CancelToken | None = None,
        browser_timeout: float = 300.0,
        login_hint: str | None = None,
        open_browser: Callable[[str], bool] | None = None,
        on_browser_failed: Callable[[str], None] | None = None,
    ) -> Account: ...

    async def sign_in_with_device_code(
        self, on_code: Callable[[DeviceCodePrompt], None], *, cancel: CancelToken | None = None
    ) -> Account: ...


@dataclass(frozen=True)
class Problem:
    """What the dialog shows when a sign-in fails: a title, the explanation, and (for an
    administrator's approval) the text to send them."""

    title: str
    message: str
    for_admin: str | None = None
    setting: str | None = None


def _client_id_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("client_id", [""])[0]


def describe_problem(error: CelesteError) -> Problem:
    """The person-facing explanation of a failed sign-in."""
    if isinstance(error, AdminConsentRequired):
        permissions = ", ".join(error.permissions)
        client_id = _client_id_of(error.admin_consent_url)
        for_admin = (
            "Please approve the app CelesteOS Desktop for our Microsoft 365 tenant, so the yacht's "
            "documents can be copied to the fleet's CelesteOS.\n\n"
            f"Approval link (open it signed in as a Global or Cloud Application Administrator):\n"
            f"{error.admin_consent_url}\n\n"
            f"Application (client) id: {client_id}\n"
            f"Permissions it asks for (delegated, read-only): {permissions}\n"
        )
        message = (
            "Your organisation only lets an administrator approve new apps. A Microsoft 365 "
            "administrator of your tenant must approve CelesteOS Desktop once; then connect again. "
            "Copy the text below and send it to them."
        )
        return Problem(error.title, message, for_admin)
    if isinstance(error, ConfigError):
        place = _SETTING_PLACES.get(error.setting, "Settings")
        message = (
            f"The setting “{error.setting}” is wrong. {error.message}\n\n"
            f"Correct it in {place}, or import the provisioning file from the office again."
        )
        return Problem(error.title, message, setting=error.setting)
    return Problem(error.title, error.message)


class _Page:
    CHOOSE, BROWSER, DEVICE, DONE, PROBLEM = range(5)


def _wrapped(text: str = "", *, selectable: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _heading(text: str) -> QLabel:
    label = _wrapped(text)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.2)
    label.setFont(font)
    label.setAccessibleName(text)
    return label


def _button(text: str, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    return button


class ConnectDialog(QDialog):
    """Sign in to Microsoft 365. ``await dialog.run()`` gives the account, or None when not
    signed in. ``account`` holds it too, for a caller that shows the dialog another way."""

    def __init__(
        self,
        session: SignInSession,
        parent: QWidget | None = None,
        *,
        browser_timeout: float = 300.0,
        open_browser: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to Microsoft 365 — CelesteOS Desktop")
        self._session = session
        self._browser_timeout = browser_timeout
        self._open_browser = open_browser
        self._cancel: CancelToken | None = None
        self._task: asyncio.Task[None] | None = None
        self.account: Account | None = None
        self.problem: Problem | None = None

        self.pages = QStackedWidget()
        for build in (self._choose_page, self._browser_page, self._device_page, self._done_page, self._problem_page):
            self.pages.addWidget(build())

        self.cancel_button = _button("&Cancel", "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.again_button = _button("&Try again", "Try signing in again")
        self.again_button.clicked.connect(lambda: self._show(_Page.CHOOSE))
        self.close_button = _button("Close", "Close")
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.again_button, self.cancel_button, self.close_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)
        self._show(_Page.CHOOSE)
        fit_to_text(self, 84, 26)

    # -- pages ---------------------------------------------------------------------------------

    def _choose_page(self) -> QWidget:
        page = QWidget()
        self.browser_button = QCommandLinkButton(
            "Sign in with the &browser", "Opens Microsoft's sign-in page in this PC's web browser."
        )
        self.browser_button.setAccessibleName("Sign in with the browser")
        self.device_button = QCommandLinkButton(
            "Sign in on &another device",
            "Shows a code to enter on a phone or another computer: for when this PC's browser is locked down.",
        )
        self.device_button.setAccessibleName("Sign in on another device")
        self.browser_button.clicked.connect(self.start_browser)
        self.device_button.clicked.connect(self.start_device_code)
        self.note = _wrapped(selectable=True)
        self.note.setAccessibleName("Sign-in note")
        self.note.hide()
        column = QVBoxLayout(page)
        column.addWidget(_heading("Connect this PC to Microsoft 365"))
        column.addWidget(
            _wrapped(
                "Sign in with the Microsoft 365 account that can read the yacht's documents. The app only "
                "reads; it never changes or deletes anything in OneDrive or SharePoint."
            )
        )
        column.addWidget(self.browser_button)
        column.addWidget(self.device_button)
        column.addWidget(self.note)
        column.addStretch(1)
        return page

    def _browser_page(self) -> QWidget:
        page = QWidget()
        minutes = max(1, round(self._browser_timeout / 60))
        self.browser_text = _wrapped(
            "Microsoft's sign-in page has opened in your browser. Finish signing in there, then come "
            f"back here. If the browser was closed, this stops waiting after {minutes} minute"
            f"{'s' if minutes != 1 else ''}, or press Cancel."
        )
        self.browser_failed = _wrapped(
            "No browser could be opened. Open this address in a browser on this PC (the answer comes "
            "back to this app), or cancel and sign in on another device:"
        )
        self.browser_url = QLineEdit()
        self.browser_url.setReadOnly(True)
        self.browser_url.setAccessibleName("Sign-in address to open in a browser on this PC")
        self.copy_browser_url = _button("Copy add&ress", "Copy the sign-in address")
        self.copy_browser_url.clicked.connect(lambda: self._copy(self.browser_url.text()))
        self._failed_row = QWidget()
        row = QHBoxLayout(self._failed_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.browser_url, 1)
        row.addWidget(self.copy_browser_url)
        for widget in (self.browser_failed, self._failed_row):
            widget.hide()
        column = QVBoxLayout(page)
        column.addWidget(_heading("Finish signing in in your browser"))
        column.addWidget(self.browser_text)
        column.addWidget(self.browser_failed)
        column.addWidget(self._failed_row)
        column.addStretch(1)
        return page

    def _device_page(self) -> QWidget:
        page = QWidget()
        self.device_status = _wrapped("Asking Microsoft for a sign-in code…")
        self.device_status.setAccessibleName("Sign-in status")
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setAccessibleName("Address to open on the other device")
        self.copy_address = _button("Copy &address", "Copy the address")
        self.copy_address.clicked.connect(lambda: self._copy(self.address.text()))
        self.code = QLineEdit()
        self.code.setReadOnly(True)
        self.code.setAccessibleName("Sign-in code to enter")
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(self.font().pointSizeF() * 1.8)
        font.setWeight(QFont.Weight.Bold)
        self.code.setFont(font)
        self.copy_code = _button("Copy co&de", "Copy the code")
        self.copy_code.clicked.connect(lambda: self._copy(self.code.text()))
        self.qr = QrCodeWidget()
        self.expiry = _wrapped()
        self.expiry.setAccessibleName("When the code expires")

        steps = QVBoxLayout()
        steps.addWidget(_wrapped("1. On a phone or another computer, open this address (or scan the QR code):"))
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.copy_address)
        steps.addLayout(address_row)
        steps.addWidget(_wrapped("2. Enter this code, then sign in with your Microsoft 365 account:"))
        code_row = QHBoxLayout()
        code_row.addWidget(self.code, 1)
        code_row.addWidget(self.copy_code)
        steps.addLayout(code_row)
        steps.addWidget(self.expiry)
        steps.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(steps, 3)
        body.addWidget(self.qr, 2, Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout(page)
        column.addWidget(_heading("Sign in on another device"))
        column.addWidget(self.device_status)
        column.addLayout(body, 1)
        return page

    def _done_page(self) -> QWidget:
        page = QWidget()
        self.account_label = _wrapped(selectable=True)
        self.account_label.setAccessibleName("Signed-in account")
        column = QVBoxLayout(page)
        column.addWidget(_heading("Connected to Microsoft 365"))
        column.addWidget(self.account_label)
        column.addStretch(1)
        return page

    def _problem_page(self) -> QWidget:
        page = QWidget()
        self.problem_title = _heading("")
        self.problem_text = _wrapped(selectable=True)
        self.problem_text.setAccessibleName("What went wrong and what to do")
        self.admin_text = QPlainTextEdit()
        self.admin_text.setReadOnly(True)
        self.admin_text.setAccessibleName("Text to send to your Microsoft 365 administrator")
        self.copy_admin = _button("Copy for the ad&ministrator", "Copy the text for the administrator")
        self.copy_admin.clicked.connect(lambda: self._copy(self.admin_text.toPlainText()))
        column = QVBoxLayout(page)
        column.addWidget(self.problem_title)
        column.addWidget(self.problem_text)
        column.addWidget(self.admin_text, 1)
        column.addWidget(self.copy_admin, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(0)
        return page

    # -- state ---------------------------------------------------------------------------------

    def current_page(self) -> int:
        return self.pages.currentIndex()

    def signing_in(self) -> bool:
        """Whether a sign-in is still running (a cancelled one until it has unwound)."""
        return self._task is not None

    def _show(self, page: int) -> None:
        self.pages.setCurrentIndex(page)
        waiting = page in (_Page.BROWSER, _Page.DEVICE)
        self.cancel_button.setVisible(page in (_Page.CHOOSE, _Page.BROWSER, _Page.DEVICE))
        self.cancel_button.setAccessibleName("Cancel the sign-in" if waiting else "Close without signing in")
        self.again_button.setVisible(page == _Page.PROBLEM)
        self.close_button.setVisible(page in (_Page.DONE, _Page.PROBLEM))
        self.close_button.setText("&Done" if page == _Page.DONE else "C&lose")
        self.close_button.setDefault(page == _Page.DONE)
        focus = {
            _Page.CHOOSE: self.browser_button,
            _Page.BROWSER: self.cancel_button,
            _Page.DEVICE: self.copy_code,
            _Page.DONE: self.close_button,
            _Page.PROBLEM: self.again_button,
        }[page]
        focus.setFocus()

    def start_browser(self) -> None:
        """Sign in through the system browser."""
        for widget in (self.browser_failed, self._failed_row):
            widget.hide()
        self._start(
            _Page.BROWSER,
            lambda cancel: self._session.sign_in_interactive(
                cancel=cancel,
                browser_timeout=self._browser_timeout,
                open_browser=self._open_browser,
                on_browser_failed=self._browser_failed,
            ),
        )

    def start_device_code(self) -> None:
        """Sign in with a code entered on another device."""
        self.device_status.setText("Asking Microsoft for a sign-in code…")
        for widget in (self.address, self.code):
            widget.clear()
        self.qr.set_text("")
        self.expiry.clear()
        for button in (self.copy_address, self.copy_code):
            button.setEnabled(False)
        self._start(_Page.DEVICE, lambda cancel: self._session.sign_in_with_device_code(self._show_code, cancel=cancel))

    def _start(self, page: int, begin: Callable[[CancelToken], Coroutine[Any, Any, Account]]) -> None:
        self._stop_flow()
        self.note.hide()
        cancel = CancelToken()
        self._cancel = cancel
        self._show(page)
        self._task = asyncio.ensure_future(self._sign_in(begin(cancel), cancel))

    async def _sign_in(self, flow: Coroutine[Any, Any, Account], cancel: CancelToken) -> None:
        try:
            account = await flow
        except SignInCancelled as exc:
            if cancel is self._cancel:
                self._show(_Page.CHOOSE)
                if not cancel.cancelled:  # a timeout or a cancel in the browser: say what happened
                    self.note.setText(exc.message)
                    self.note.show()
            return
        except CelesteError as exc:
            self._show_problem(describe_problem(exc))
            return
        except Exception:  # a bug: keep the window usable and let the log carry the detail
            log.exception("sign-in failed unexpectedly")
            self._show_problem(
                Problem(
                    "Sign-in failed",
                    "Something unexpected went wrong during the sign-in. Try again; if it keeps "
                    "happening, export diagnostics (Help menu) for support.",
                )
            )
            return
        finally:
            if cancel is self._cancel:
                self._task = None
        self.account = account
        who = f"{account.display_name} ({account.username})" if account.display_name else account.username
        self.account_label.setText(f"Signed in as {who}\nTenant: {account.tenant_id}")
        self._show(_Page.DONE)

    def _show_code(self, prompt: DeviceCodePrompt) -> None:
        self.device_status.setText("Waiting for you to finish signing in on the other device…")
        self.address.setText(prompt.verification_uri)
        self.code.setText(prompt.user_code)
        for field in (self.address, self.code):  # the whole text in view, whatever the scaling
            field.setMinimumWidth(field.fontMetrics().horizontalAdvance(field.text() + "MM"))
        self.qr.set_text(prompt.verification_uri)
        self.expiry.setText(f"The code works until {prompt.expires_at.astimezone():%H:%M}.")
        for button in (self.copy_address, self.copy_code):
            button.setEnabled(True)
        self.copy_code.setFocus()

    def _browser_failed(self, url: str) -> None:
        self.browser_text.hide()
        self.browser_url.setText(url)
        self.browser_url.setCursorPosition(0)  # show where the address starts
        for widget in (self.browser_failed, self._failed_row):
            widget.show()

    def _show_problem(self, problem: Problem) -> None:
        self.problem = problem
        self.problem_title.setText(problem.title)
        self.problem_title.setAccessibleName(problem.title)
        self.problem_text.setText(problem.message)
        self.admin_text.setPlainText(problem.for_admin or "")
        for widget in (self.admin_text, self.copy_admin):
            widget.setVisible(problem.for_admin is not None)
        self._show(_Page.PROBLEM)

    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def _stop_flow(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def cancel(self) -> None:
        """Cancel: stop a sign-in in progress (back to the choice), else close."""
        if self._task is not None and self.current_page() in (_Page.BROWSER, _Page.DEVICE):
            self._stop_flow()
            self._show(_Page.CHOOSE)
        else:
            self.reject()

    def done(self, result: int) -> None:
        self._stop_flow()  # closing the window in any way ends a sign-in in progress
        super().done(result)

    async def run(self) -> Account | None:
        """Show the dialog (window-modal, no nested event loop) until it closes."""
        try:
            await show_modal(self)
        finally:
            task = self._task
            if task is not None:  # cancelled on close; wait the moment it takes to unwind
                await asyncio.gather(task, return_exceptions=True)
        return self.account


async def sign_in_dialog(parent: QWidget | None, session: SignInSession, **options: Any) -> bool:
    """The Connect dialog as the controller's connect hook: True once signed in."""
    dialog = ConnectDialog(session, parent, **options)
    try:
        return await dialog.run() is not None
    finally:
        dialog.deleteLater()


# -- Disconnect --------------------------------------------------------------------------------

_DISCONNECT_TEXT = (
    "Disconnect removes the Microsoft 365 account from this PC and wipes every secret saved "
    "here: the sign-in, the yacht key and the digest salt."
)
_DISCONNECT_MORE = (
    "Copying stops until someone connects again and enters the yacht key (or imports the "
    "provisioning file). Documents already copied stay in CelesteOS; nothing in OneDrive changes."
)


class DisconnectBox(QMessageBox):
    """The confirmation, with Cancel as the default (Escape and Enter cancel)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Disconnect this PC?")
        self.setText(_DISCONNECT_TEXT)
        self.setInformativeText(_DISCONNECT_MORE)
        self.disconnect_button = self.addButton("&Disconnect and wipe", QMessageBox.ButtonRole.DestructiveRole)
        self.disconnect_button.setAccessibleName("Disconnect and wipe the saved secrets")
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.cancel_button.setAccessibleName("Cancel: stay connected")
        self.setDefaultButton(self.cancel_button)
        self.setEscapeButton(self.cancel_button)

    def confirmed(self) -> bool:
        return self.clickedButton() is self.disconnect_button


def confirm_disconnect(parent: QWidget | None = None) -> bool:
    """Ask before Disconnect; True to go ahead. Runs a nested event loop: call it from a Qt slot,
    not from a coroutine (use ``ask_disconnect`` there)."""
    box = DisconnectBox(parent)
    box.exec()
    return box.confirmed()


async def ask_disconnect(parent: QWidget | None = None) -> bool:
    """``confirm_disconnect`` for coroutines on the qasync loop: the box is shown with ``open()``."""
    box = DisconnectBox(parent)
    try:
        await show_modal(box)
        return box.confirmed()
    finally:
        box.deleteLater()
