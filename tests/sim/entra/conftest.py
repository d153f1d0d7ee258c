"""Fixtures for the simulated Entra ID: a real HTTPS server on loopback, MSAL apps and a test browser.

The test browser replaces ``webbrowser.open`` (what MSAL's loopback listener calls): it fetches
the authorize URL over TLS, answers the sign-in page if there is one, and POSTs the
auto-submitting form_post page to MSAL's listener, as a person's browser would.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msal
import pytest
import requests

from celeste_desktop.sim.entra import EntraSim
from celeste_desktop.sim.faults import FaultPlan
from celeste_desktop.sim.http import SimLoop, SimServer
from celeste_desktop.sim.tls import SimTls, make_tls
from celeste_desktop.sim.tokens import TokenAuthority

TENANT_ID = "0b9d8c7e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
CLIENT_ID = "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928"


class OffsetClock:
    """Real time plus an offset the test moves forward: MSAL keeps real time, the sim jumps ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, list[str]] = field(default_factory=dict)


class FormParser(HTMLParser):
    """Collects the forms of a page: hidden and text inputs, checked radios, submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(attr.get("action", "")))
        elif tag == "input" and self.forms and attr.get("name"):
            if attr.get("type") != "radio" or "checked" in attr:
                self.forms[-1].fields[attr["name"]] = attr.get("value", "")
        elif tag == "button" and self.forms and attr.get("name"):
            self.forms[-1].buttons.setdefault(attr["name"], []).append(attr.get("value", ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


class FakeBrowser:
    """Stands in for the system browser MSAL opens; runs each visit in a thread, like a real one."""

    def __init__(self, tls: SimTls) -> None:
        self.tls = tls
        self.opened: list[str] = []
        self.pages: list[str] = []
        self.listener_replies: list[httpx.Response] = []
        self.errors: list[BaseException] = []
        self.username: str | None = None  # pick this account on the sign-in page
        self.action = "accept"
        self._threads: list[threading.Thread] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=self._visit, args=(url,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return True

    def _visit(self, url: str) -> None:
        try:
            with httpx.Client(verify=self.tls.client_context(), trust_env=False, timeout=10) as client:
                page = client.get(url)
                self.pages.append(page.text)
                form = parse_page(page.text).forms[0]
                for _ in range(3):  # the sign-in page, then the form_post page
                    if urlsplit(form.action).scheme == "http":
                        break
                    fields = dict(form.fields)
                    if self.username:
                        fields["username"] = self.username
                    fields["action"] = self.action
                    page = client.post(form.action, data=fields)
                    self.pages.append(page.text)
                    form = parse_page(page.text).forms[0]
                self.listener_replies.append(client.post(form.action, data=form.fields))
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


@dataclass
class EntraEnv:
    sim: EntraSim
    server: SimServer
    tokens: TokenAuthority
    faults: FaultPlan
    tls: SimTls
    clock: OffsetClock
    sessions: list[requests.Session] = field(default_factory=list)
    tenant_id: str = TENANT_ID
    client_id: str = CLIENT_ID
    # Helpers reach the tests through this fixture: importing "conftest" is ambiguous in a suite.
    parse_page = staticmethod(parse_page)
    pkce_pair = staticmethod(pkce_pair)

    @property
    def base(self) -> str:
        return self.server.base_url

    @property
    def authority_url(self) -> str:
        return f"{self.base}/{self.tenant_id}"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=self.tls.client_context(), trust_env=False)

    def msal_app(self, client_id: str = CLIENT_ID) -> msal.PublicClientApplication:
        session = requests.Session()
        session.verify = str(self.tls.ca_bundle)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would silently override verify
        self.sessions.append(session)
        return msal.PublicClientApplication(
            client_id, authority=self.authority_url, instance_discovery=False,
            http_client=session,
        )


@pytest.fixture(scope="session")
def sim_tls(tmp_path_factory: pytest.TempPathFactory) -> SimTls:
    return make_tls(Path(tmp_path_factory.mktemp("entra-tls")))


@pytest.fixture(scope="session")
def sim_loop() -> Iterator[SimLoop]:
    loop = SimLoop()
    yield loop
    loop.close()
    loop.loop.close()  # SimLoop.close stops the loop but leaves it open (a ResourceWarning)


@pytest.fixture
def entra(sim_tls: SimTls, sim_loop: SimLoop) -> Iterator[EntraEnv]:
    """A fresh tenant per test, auto-consent on, device codes polled every second."""
    tokens = TokenAuthority(issuer=f"https://sts.windows.net/{TENANT_ID}/")
    faults = FaultPlan()
    clock = OffsetClock()
    sim = EntraSim(
        tokens=tokens, faults=faults, tenant_id=TENANT_ID, client_id=CLIENT_ID, auto_consent=True,
        device_code_interval_s=1, clock=clock,
    )
    server = SimServer("entra", sim.handler, ssl_context=sim_tls.server_context, faults=faults)
    sim_loop.start_servers([server])
    sim.base_url = server.base_url
    env = EntraEnv(sim, server, tokens, faults, sim_tls, clock)
    yield env
    for session in env.sessions:
        session.close()
    sim_loop.stop_servers([server])


@pytest.fixture
def browser(sim_tls: SimTls, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBrowser]:
    fake = FakeBrowser(sim_tls)
    monkeypatch.setenv("BROWSER", "celeste-test-browser")  # keeps MSAL from preferring Edge
    monkeypatch.setattr(webbrowser, "open", fake.open)
    yield fake
    fake.join()
