"""Signing in to the simulated Entra ID through MSAL's own code: browser and device-code flows,
consent, cancel, timeouts and bad settings."""

from __future__ import annotations

import asyncio
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from celeste_desktop.auth.errors import AdminConsentRequired
from celeste_desktop.auth.flows import CancelToken, DeviceCodePrompt
from celeste_desktop.auth.session import MsalSession
from celeste_desktop.cli.auth_cmd import open_session
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings, save_settings
from celeste_desktop.domain.errors import ConfigError, ConsentRequired, SignInCancelled
from celeste_desktop.sim.entra import SimUser
from celeste_desktop.sim.stack import SimStack

OFFICER = "it.officer@mysimyacht.onmicrosoft.com"
CAPTAIN = "captain@mysimyacht.onmicrosoft.com"


class Forms(HTMLParser):
    """The forms of a page: action, hidden/text inputs and checked radios."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append((attr.get("action", ""), {}))
        elif tag == "input" and self.forms and attr.get("name") and (attr.get("type") != "radio" or "checked" in attr):
            self.forms[-1][1][attr["name"]] = attr.get("value", "")


class Browser:
    """Stands in for the system browser (replaces ``webbrowser.open``), one thread per visit.

    ``action`` answers the simulated sign-in page; ``idle`` only records the address, as a
    person who closed the tab would.
    """

    def __init__(self, sim: SimStack, *, action: str = "accept", username: str | None = None) -> None:
        self.sim = sim
        self.action = action
        self.username = username
        self.idle = False
        self.opened: list[str] = []
        self.listener_replies: list[httpx.Response] = []
        self.errors: list[BaseException] = []
        self.before_answer: list[tuple[str, dict[str, str]]] = []  # extra POSTs to the listener first
        self._threads: list[threading.Thread] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        if not self.idle:
            thread = threading.Thread(target=self._visit, args=(url,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return True

    def _visit(self, url: str) -> None:
        try:
            with httpx.Client(verify=self.sim.tls.client_context(), trust_env=False, timeout=10) as client:
                page = client.get(url)
                action, fields = Forms(page.text).forms[0]
                if urlsplit(action).scheme == "https":  # the sign-in page, not yet the answer
                    if self.username:
                        fields["username"] = self.username
                    page = client.post(action, data={**fields, "action": self.action})
                    action, fields = Forms(page.text).forms[0]
                for data in self.before_answer:
                    self.listener_replies.append(client.request(data[0], action, data=data[1] or None))
                self.listener_replies.append(client.post(action, data=fields))
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def context(sim_home: Path) -> CliContext:
    return CliContext(paths=AppPaths.resolve(sim_home))


@pytest.fixture
def session(context: CliContext) -> Iterator[MsalSession]:
    session = open_session(context)
    yield session
    session.close()


@pytest.fixture
def captain(sim: SimStack) -> str:
    """A second person in the simulated tenant (the stack starts with the IT officer only)."""
    sim.entra.users.append(SimUser(CAPTAIN, "Elena Sørensen"))
    return CAPTAIN


@pytest.fixture
def browser(sim: SimStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    fake = Browser(sim)
    monkeypatch.setattr(webbrowser, "open", fake.open)
    yield fake
    fake.join()


async def eventually(condition: Callable[[], object]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in 5 s")


def approve(sim: SimStack) -> Callable[[DeviceCodePrompt], None]:
    """Enter the code at once (on the verification page, as a person would), so nobody waits."""
    return lambda prompt: sim.entra.approve_device_code(prompt.user_code)


def change_settings(context: CliContext, **changes: object) -> CliContext:
    settings_file = context.paths.settings_file
    save_settings(settings_file, load_settings(settings_file).replace(**changes))
    return CliContext(paths=context.paths)


async def test_browser_sign_in_end_to_end(session: MsalSession, browser: Browser, sim: SimStack) -> None:
    account = await session.sign_in_interactive(browser_timeout=10)

    assert not browser.errors
    assert (account.username, account.tenant_id) == (OFFICER, sim.entra.tenant_id)
    assert account.display_name == "Morgan Reyes"
    query = parse_qs(urlsplit(browser.opened[0]).query)
    assert query["response_mode"] == ["form_post"] and query["code_challenge_method"] == ["S256"]
    assert set(query["scope"][0].split()) == {
        "Files.Read.All",
        "User.Read",
        "Sites.Read.All",
        "offline_access",
        "openid",
        "profile",
    }
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert browser.listener_replies[-1].status_code == 200
    assert "return to CelesteOS Desktop" in browser.listener_replies[-1].text
    assert sim.entra.grant_counts["authorization_code"] == 1
    assert session.current_account() == account
    # The sign-in outlives the session: a fresh one (another process) reads it from the vault.
    other = MsalSession(session.settings, session._vault)
    assert other.current_account() == account
    assert (await asyncio.to_thread(other.acquire_silent)).value


async def test_sharepoint_off_asks_for_files_and_profile_only(context: CliContext, browser: Browser) -> None:
    session = open_session(change_settings(context, include_sharepoint=False))

    await session.sign_in_interactive(browser_timeout=10)

    scope = parse_qs(urlsplit(browser.opened[0]).query)["scope"][0].split()
    assert "Sites.Read.All" not in scope and {"Files.Read.All", "User.Read"} <= set(scope)


async def test_device_code_sign_in(session: MsalSession, sim: SimStack) -> None:
    prompts: list[DeviceCodePrompt] = []
    started = time.monotonic()

    account = await session.sign_in_with_device_code(prompts.append)

    assert time.monotonic() - started < 5  # approved on the second poll, one interval later
    [prompt] = prompts
    assert prompt.user_code in prompt.message and prompt.verification_uri in prompt.message
    assert prompt.verification_uri.endswith("/devicelogin")
    assert prompt.expires_at.timestamp() > time.time() + 600
    assert account.username == OFFICER
    assert sim.entra.grant_counts["urn:ietf:params:oauth:grant-type:device_code"] == 1


async def test_device_code_approved_by_another_person(session: MsalSession, sim: SimStack, captain: str) -> None:
    sim.entra.auto_consent = False

    def approve_on_a_phone(prompt: DeviceCodePrompt) -> None:
        sim.entra.approve_device_code(prompt.user_code, username=CAPTAIN)

    account = await session.sign_in_with_device_code(approve_on_a_phone)

    assert account.username == CAPTAIN


async def test_a_new_sign_in_replaces_the_previous_account(session: MsalSession, sim: SimStack, captain: str) -> None:
    await session.sign_in_with_device_code(approve(sim))
    sim.entra.auto_consent = False

    account = await session.sign_in_with_device_code(
        lambda prompt: sim.entra.approve_device_code(prompt.user_code, username=CAPTAIN)
    )

    assert account.username == CAPTAIN
    assert session.current_account() == account
    assert [a["username"] for a in session._cache.search("Account")] == [CAPTAIN]


async def test_cancel_interactive_returns_at_once(session: MsalSession, browser: Browser) -> None:
    browser.idle = True  # the person looks at the page and presses Cancel in the app
    cancel = CancelToken()
    sign_in = asyncio.create_task(session.sign_in_interactive(cancel=cancel, browser_timeout=60))
    await eventually(lambda: browser.opened)
    port = urlsplit(parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]).port

    started = time.monotonic()
    cancel.cancel()
    with pytest.raises(SignInCancelled):
        await sign_in

    assert time.monotonic() - started < 0.5
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):  # the listener is gone
            await client.get(f"http://127.0.0.1:{port}/", timeout=2)


async def test_cancel_before_the_browser_opens(session: MsalSession, browser: Browser) -> None:
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(SignInCancelled):
        await session.sign_in_interactive(cancel=cancel, browser_timeout=60)

    assert browser.opened == []


async def test_closed_browser_times_out_quietly(session: MsalSession, browser: Browser) -> None:
    browser.idle = True  # the tab was closed: no answer will ever come

    with pytest.raises(SignInCancelled, match="not finished within 1 minute"):
        await session.sign_in_interactive(browser_timeout=0.2)


async def test_cancel_in_the_browser_is_a_cancel(session: MsalSession, browser: Browser, sim: SimStack) -> None:
    sim.entra.auto_consent = False
    browser.action = "cancel"

    with pytest.raises(SignInCancelled):
        await session.sign_in_interactive(browser_timeout=10)


async def test_sign_in_page_picks_the_account(
    session: MsalSession, browser: Browser, sim: SimStack, captain: str
) -> None:
    sim.entra.auto_consent = False
    browser.username = CAPTAIN

    account = await session.sign_in_interactive(browser_timeout=10)

    assert account.username == CAPTAIN


async def test_forged_answer_is_refused_and_the_real_one_still_works(session: MsalSession, browser: Browser) -> None:
    browser.before_answer = [
        ("POST", {"code": "forged", "state": "not-the-state"}),
        ("POST", {"unrelated": "1"}),
        ("GET", {}),
    ]

    account = await session.sign_in_interactive(browser_timeout=10)

    forged, unrelated, get, real = browser.listener_replies
    assert (forged.status_code, unrelated.status_code, get.status_code, real.status_code) == (400, 400, 200, 200)
    assert "another sign-in" in forged.text
    assert account.username == OFFICER


async def test_query_string_answer_is_refused(session: MsalSession, browser: Browser) -> None:
    browser.idle = True
    cancel = CancelToken()
    sign_in = asyncio.create_task(session.sign_in_interactive(cancel=cancel, browser_timeout=10))
    await eventually(lambda: browser.opened)
    query = parse_qs(urlsplit(browser.opened[0]).query)
    listener = query["redirect_uri"][0].replace("localhost", "127.0.0.1")

    async with httpx.AsyncClient() as client:
        reply = await client.get(listener, params={"code": "x", "state": query["state"][0]})

    assert reply.status_code == 400
    await asyncio.sleep(0.05)
    assert not sign_in.done()  # still waiting for a form_post answer
    cancel.cancel()
    with pytest.raises(SignInCancelled):
        await sign_in


async def test_no_browser_shows_the_address(session: MsalSession) -> None:
    shown: list[str] = []
    cancel = CancelToken()

    def show(url: str) -> None:
        shown.append(url)
        cancel.cancel()

    with pytest.raises(SignInCancelled):
        await session.sign_in_interactive(
            cancel=cancel, browser_timeout=10, open_browser=lambda _url: False, on_browser_failed=show
        )

    assert shown and shown[0].startswith(session.settings.authority_url)


async def test_cancel_device_code_returns_at_once(session: MsalSession, sim: SimStack) -> None:
    sim.entra.auto_consent = False  # nobody will enter the code
    cancel = CancelToken()
    prompts: list[DeviceCodePrompt] = []
    sign_in = asyncio.create_task(session.sign_in_with_device_code(prompts.append, cancel=cancel))
    await eventually(lambda: prompts and any(code.polls for code in sim.entra.state.device_codes.values()))

    started = time.monotonic()
    cancel.cancel()
    with pytest.raises(SignInCancelled):
        await sign_in

    assert time.monotonic() - started < 0.5


async def test_expired_device_code(session: MsalSession, sim: SimStack) -> None:
    sim.entra.auto_consent = False

    with pytest.raises(SignInCancelled, match="expired"):
        await session.sign_in_with_device_code(lambda _prompt: sim.entra.expire_device_codes())


async def test_admin_approval_in_the_browser(session: MsalSession, browser: Browser, sim: SimStack) -> None:
    sim.entra.require_consent("admin")

    with pytest.raises(ConsentRequired) as caught:
        await session.sign_in_interactive(browser_timeout=10)

    error = caught.value
    assert isinstance(error, AdminConsentRequired)
    settings = session.settings
    assert error.admin_consent_url == (
        f"{settings.effective_authority}/{settings.tenant}/adminconsent?client_id={settings.client_id}"
    )
    assert error.admin_consent_url in error.message
    assert "Files.Read.All, User.Read, Sites.Read.All" in error.message and "administrator" in error.message
    assert error.permissions == ("Files.Read.All", "User.Read", "Sites.Read.All")
    assert "AADSTS90094" in error.message and "Trace ID" not in error.message
    assert session.current_account() is None


async def test_admin_approval_on_device_code(session: MsalSession, sim: SimStack) -> None:
    sim.entra.require_consent("admin")

    with pytest.raises(ConsentRequired, match="adminconsent"):
        await session.sign_in_with_device_code(approve(sim))


async def test_user_consent_page_is_accepted(session: MsalSession, browser: Browser, sim: SimStack) -> None:
    sim.entra.require_consent("user")
    sim.entra.auto_consent = False

    account = await session.sign_in_interactive(browser_timeout=10)

    assert account.username == OFFICER


async def test_wrong_client_id_names_the_setting(context: CliContext, sim: SimStack) -> None:
    session = open_session(change_settings(context, client_id="00000000-1111-2222-3333-444444444444"))

    with pytest.raises(ConfigError) as caught:
        await session.sign_in_with_device_code(lambda _prompt: None)

    assert caught.value.setting == "client_id"
    assert "00000000-1111-2222-3333-444444444444" in caught.value.message
    assert "AADSTS700016" in caught.value.message


async def test_wrong_tenant_names_the_setting(context: CliContext) -> None:
    session = open_session(change_settings(context, tenant="nosuchtenant.onmicrosoft.com"))

    with pytest.raises(ConfigError) as caught:
        await session.sign_in_with_device_code(lambda _prompt: None)

    assert caught.value.setting == "tenant" and "nosuchtenant.onmicrosoft.com" in caught.value.message


async def test_missing_client_id_names_the_setting(context: CliContext) -> None:
    session = open_session(change_settings(context, client_id=""))

    with pytest.raises(ConfigError) as caught:
        await session.sign_in_interactive(browser_timeout=1)

    assert caught.value.setting == "client_id"


async def test_unreadable_vault_does_not_stop_a_fresh_sign_in(
    session: MsalSession, context: CliContext, sim: SimStack
) -> None:
    vault_file = context.paths.vault_file
    blob = bytearray(vault_file.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    vault_file.write_bytes(bytes(blob))

    account = await session.sign_in_with_device_code(approve(sim))

    assert account.username == OFFICER
    assert list(vault_file.parent.glob("vault.bin.bad-*"))  # moved aside, never deleted
    assert session.current_account() == account
