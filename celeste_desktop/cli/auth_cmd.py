"""``celeste-desktop login|logout|status``: connect this PC to Microsoft 365 without the window.

``login`` opens the system browser (or, with ``--device-code``, prints a code to enter on any
device); ``logout`` forgets the account and wipes every saved secret; ``status`` says who is
signed in. Errors are raised as ``CelesteError`` subclasses for ``cli.main`` to print; nothing
here prints a token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from celeste_desktop.auth.vault import UNREADABLE_TITLE, Vault
from celeste_desktop.cli.context import CliContext
from celeste_desktop.domain.errors import CelesteError, VaultError

if TYPE_CHECKING:
    from celeste_desktop.auth.flows import DeviceCodePrompt
    from celeste_desktop.auth.session import Account, MsalSession

__all__ = ["describe", "login", "logout", "open_session", "status", "status_report", "write_status"]

EXIT_OK = 0
EXIT_ATTENTION = 2  # the same code cli.main uses for sign-in and vault problems

BROWSER_TIMEOUT_S = 300.0


def _open_vault(context: CliContext, out: TextIO | None) -> Vault:
    """The vault; an unreadable one has been moved aside by the vault: say so and go on afresh."""
    try:
        return context.secrets()
    except VaultError as problem:
        if problem.title != UNREADABLE_TITLE:
            raise  # no key store, or a vault busy in another process: nothing to recover here
        if out is not None:
            out.write(f"{problem.title}: {problem.message}\n")
        return context.secrets()  # raises again if it is still unreadable (a newer format)


def open_session(context: CliContext, out: TextIO | None = None) -> MsalSession:
    """The MSAL session for this run; its opaque tokens are registered with the log redactor."""
    from celeste_desktop.auth.session import MsalSession

    vault = _open_vault(context, out)
    return MsalSession(context.settings, vault, on_secret=context.redactor.add_secret)


def _signed_in(account: Account, out: TextIO) -> int:
    who = f"{account.display_name} <{account.username}>" if account.display_name else account.username
    out.write(f"Signed in to Microsoft 365 as {who} (tenant {account.tenant_id}).\n")
    return EXIT_OK


def login(context: CliContext, device_code: bool, out: TextIO, *, browser_timeout: float = BROWSER_TIMEOUT_S) -> int:
    """Sign in; ``device_code`` prints a code to enter on another device instead of a browser."""
    session = open_session(context, out)
    try:
        if device_code:

            def show(prompt: DeviceCodePrompt) -> None:
                out.write(f"{prompt.message}\nWaiting for the sign-in to finish (Ctrl+C to stop)…\n")
                out.flush()

            account = asyncio.run(session.sign_in_with_device_code(show))
        else:

            def no_browser(url: str) -> None:
                out.write(
                    "No browser could be opened. Open this address in a browser on this PC, or run "
                    f"`celeste-desktop login --device-code` to sign in from another device:\n{url}\n"
                )
                out.flush()

            out.write("Opening the browser to sign in to Microsoft 365 (Ctrl+C to stop)…\n")
            out.flush()
            account = asyncio.run(
                session.sign_in_interactive(browser_timeout=browser_timeout, on_browser_failed=no_browser)
            )
    finally:
        session.close()
    return _signed_in(account, out)


def logout(context: CliContext, out: TextIO) -> int:
    """Forget the account and wipe every secret saved on this PC (sign-in and yacht key)."""
    session = open_session(context, out)
    try:
        session.sign_out()
    finally:
        session.close()
    out.write(
        "Signed out. The saved Microsoft 365 sign-in and every other saved secret (the yacht key "
        "too) were removed from this PC. To connect again, import the provisioning file and run "
        "`celeste-desktop login`.\n"
    )
    return EXIT_OK


def status_report(context: CliContext) -> dict[str, Any]:
    """What ``status --json`` prints: ``{"account": {...} | None}``, plus ``"problem"`` when the
    saved sign-in cannot be read. Callers add their own keys before ``write_status``."""
    from celeste_desktop.auth.session import MsalSession

    report: dict[str, Any] = {"account": None}
    try:
        session = MsalSession(context.settings, context.secrets())
        account = session.current_account()  # reads the cache only: no network
    except VaultError as problem:
        report["problem"] = describe(problem)
        return report
    report["account"] = account.as_dict() if account is not None else None
    return report


def write_status(report: Mapping[str, Any], as_json: bool, out: TextIO) -> int:
    """Print a status report; exit code 2 when it carries a problem."""
    problem = report.get("problem")
    if as_json:
        out.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        account = report.get("account")
        if isinstance(problem, Mapping):
            out.write(f"{problem.get('title')}: {problem.get('message')}\n")
        elif isinstance(account, Mapping):
            name = account.get("display_name")
            who = f"{name} <{account.get('username')}>" if name else account.get("username")
            out.write(f"Signed in to Microsoft 365 as {who} (tenant {account.get('tenant_id')}).\n")
        else:
            out.write("Not signed in to Microsoft 365. Run `celeste-desktop login` (or `login --device-code`).\n")
    return EXIT_ATTENTION if problem else EXIT_OK


def status(context: CliContext, as_json: bool, out: TextIO) -> int:
    """Who is signed in (no network); ``as_json`` prints the report as JSON."""
    return write_status(status_report(context), as_json, out)


def describe(error: CelesteError) -> dict[str, str]:
    """An error as JSON-ready fields, for callers that add problems of their own to the report."""
    return {"title": error.title, "message": error.message}
