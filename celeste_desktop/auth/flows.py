"""The two ways to sign in: the system browser (loopback redirect, PKCE) and a device code.

Both can be cancelled at once from any thread (``CancelToken.cancel()``, a window's Cancel
button) and raise ``SignInCancelled``; cancelling the awaiting task works too.

MSAL's ``acquire_token_interactive`` blocks its thread until the browser answers or its timeout
passes, and has no way to stop it. So the browser flow is assembled from MSAL's public
auth-code-flow API instead, which is what ``acquire_token_interactive`` does inside: MSAL builds
the request (PKCE, ``state``, nonce, ``response_mode=form_post``) and redeems and validates the
answer (state, PKCE, id token), while the loopback listener is ours. Cancel closes it at once,
the timeout is exact, and a browser that is simply closed costs nothing but the timeout.

The device-code flow asks MSAL to poll one step at a time (``exit_condition``) and waits between
steps on the event loop, so Cancel is immediate there too; ``flow["expires_at"] = 0`` (MSAL's
own abort switch) is set as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from celeste_desktop.domain.errors import SignInCancelled

if TYPE_CHECKING:
    from celeste_desktop.auth.session import Account, MsalSession

__all__ = ["CancelToken", "DeviceCodePrompt", "sign_in_interactive", "sign_in_with_device_code"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_ANSWER_BYTES = 64 * 1024
_POLL_INTERVAL = 0.05  # how quickly the listener notices it was closed


class CancelToken:
    """Cancels a sign-in in progress; ``cancel()`` is safe from any thread and more than once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on cancel (now, if already cancelled); returns a function to unregister."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What to show while waiting: the code, where to enter it, and until when it works."""

    user_code: str
    verification_uri: str
    message: str  # Microsoft's own sentence with the code and the address, localised by Entra
    expires_at: datetime


_CANCELLED_MESSAGE = "Sign-in cancelled."


def _resolve(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


async def _wait(future: asyncio.Future[T], cancel: CancelToken | None, seconds: float | None) -> T | None:
    """``future``'s result; None after ``seconds``; ``SignInCancelled`` if cancelled first."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def fire() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(_resolve, stop, None)

    forget = cancel.on_cancel(fire) if cancel is not None else (lambda: None)
    try:
        waiting: set[asyncio.Future[Any]] = {stop, future}
        done, _ = await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        forget()
        stop.cancel()
    if future in done:
        return future.result()
    if stop in done:
        raise SignInCancelled(_CANCELLED_MESSAGE)
    return None


async def _pause(cancel: CancelToken | None, seconds: float) -> None:
    """Sleep ``seconds``; ``SignInCancelled`` as soon as Cancel is pressed."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        await _wait(never, cancel, seconds)
    finally:
        never.cancel()


# -- the browser flow --------------------------------------------------------------------------


class _Listener(ThreadingHTTPServer):
    """Loopback HTTP server for the ``form_post`` answer; one thread per connection, so a
    browser's idle pre-connected socket cannot block the real answer."""

    daemon_threads = True

    def __init__(self, deliver: Callable[[dict[str, str]], None]) -> None:
        # RFC 8252: listen on the loopback address only.
        super().__init__(("127.0.0.1", 0), _AnswerHandler)
        self.deliver = deliver
        self.expected_state = ""

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _AnswerHandler(BaseHTTPRequestHandler):
    server: _Listener
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= _MAX_ANSWER_BYTES:
            self._page(400, "That was not a sign-in answer", "You can close this tab.")
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        fields = {key: values[0] for key, values in parse_qs(body).items()}
        if not ("code" in fields or "error" in fields):
            self._page(400, "That was not a sign-in answer", "You can close this tab.")
            return
        if fields.get("state") != self.server.expected_state:
            # Another (older) sign-in, or a forged answer: keep waiting for the real one.
            self._page(400, "This answer belongs to another sign-in", "Start again from CelesteOS Desktop.")
            return
        if "code" in fields:
            self._page(200, "Signed in", "You can close this tab and return to CelesteOS Desktop.")
        else:
            self._page(200, "Sign-in not completed", "Return to CelesteOS Desktop to see what to do next.")
        self.server.deliver(fields)

    def do_GET(self) -> None:
        # Answers come by form_post only; one in a query string (a downgrade) is refused.
        if urlsplit(self.path).query:
            self._page(400, "Sign-in answer refused", "Start again from CelesteOS Desktop.")
        else:
            self._page(200, "Waiting for Microsoft sign-in", "Finish signing in, then return to CelesteOS Desktop.")

    def _page(self, status: int, heading: str, text: str) -> None:
        body = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>CelesteOS Desktop</title></head>"
            f"<body><h1>{html.escape(heading)}</h1><p>{html.escape(text)}</p></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines (which could carry a code) to stderr.
        log.debug("loopback listener: %s %s", self.command, urlsplit(self.path).path)


def _open_browser(opener: Callable[[str], bool], url: str) -> bool:
    try:
        return bool(opener(url))
    except Exception as exc:  # webbrowser raises its own Error, or OSError launching a program
        log.warning("could not open a browser: %s", type(exc).__name__)
        return False


async def sign_in_interactive(
    session: MsalSession,
    *,
    cancel: CancelToken | None = None,
    browser_timeout: float = 300.0,
    login_hint: str | None = None,
    open_browser: Callable[[str], bool] | None = None,
    on_browser_failed: Callable[[str], None] | None = None,
) -> Account:
    """Sign in through the system browser; ``SignInCancelled`` on Cancel or after ``browser_timeout`` s.

    ``on_browser_failed(url)`` is called when no browser could be opened, so the caller can show
    the address to open by hand (on this PC: the answer comes back to a listener here).
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[dict[str, str]] = loop.create_future()

    def deliver(fields: dict[str, str]) -> None:  # runs on a listener thread
        with contextlib.suppress(RuntimeError):  # the loop closed: the sign-in is over anyway
            loop.call_soon_threadsafe(_resolve, answer, fields)

    listener = _Listener(deliver)
    thread: threading.Thread | None = None
    try:
        # Entra accepts any port on http://localhost for a desktop app's registered redirect.
        redirect_uri = f"http://localhost:{listener.port}"
        flow = await asyncio.to_thread(session.begin_auth_code_flow, redirect_uri, login_hint)
        listener.expected_state = str(flow["state"])
        thread = threading.Thread(
            target=listener.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="sign-in-listener",
            daemon=True,
        )
        thread.start()
        if cancel is not None and cancel.cancelled:
            raise SignInCancelled(_CANCELLED_MESSAGE)
        opened = await asyncio.to_thread(_open_browser, open_browser or webbrowser.open, str(flow["auth_uri"]))
        if not opened and on_browser_failed is not None:
            on_browser_failed(str(flow["auth_uri"]))
        fields = await _wait(answer, cancel, browser_timeout)
        if fields is None:
            minutes = max(1, round(browser_timeout / 60))
            raise SignInCancelled(
                f"The browser sign-in was not finished within {minutes} minute{'s' if minutes != 1 else ''}. "
                "Connect again when ready, or sign in with a code instead."
            )
    finally:
        if thread is not None:
            listener.shutdown()  # returns within one poll interval
        listener.server_close()
    return await asyncio.to_thread(session.complete_auth_code_flow, flow, fields)


# -- the device-code flow ----------------------------------------------------------------------


async def sign_in_with_device_code(
    session: MsalSession,
    on_code: Callable[[DeviceCodePrompt], None],
    *,
    cancel: CancelToken | None = None,
) -> Account:
    """Sign in with a code entered at Microsoft's page on any device (a phone will do).

    ``on_code`` is called once with the code to show; then this waits until the code is used,
    expires (``SignInCancelled``) or Cancel is pressed (``SignInCancelled``).
    """
    flow = await asyncio.to_thread(session.begin_device_flow)
    deadline = float(flow["expires_at"])
    on_code(
        DeviceCodePrompt(
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or flow.get("verification_url") or ""),
            message=str(flow.get("message") or ""),
            expires_at=datetime.fromtimestamp(deadline, UTC),
        )
    )

    def stop_polling() -> None:
        flow["expires_at"] = 0

    forget = cancel.on_cancel(stop_polling) if cancel is not None else (lambda: None)
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise SignInCancelled(_CANCELLED_MESSAGE)
            account = await asyncio.to_thread(session.poll_device_flow, flow)
            if account is not None:
                return account
            remaining = deadline - time.time()
            if remaining <= 0:
                raise SignInCancelled("The sign-in code expired before it was used. Connect again to get a new code.")
            # MSAL raises the interval itself when told to slow down.
            await _pause(cancel, min(float(flow["interval"]), remaining))
    finally:
        forget()
