"""``celeste-desktop login|logout|status`` against the simulated Microsoft 365."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

import httpx
import pytest

from celeste_desktop.cli.auth_cmd import login, logout, status, status_report, write_status
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.sim.stack import SimStack

OFFICER = "it.officer@mysimyacht.onmicrosoft.com"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def context(sim_home: Path) -> CliContext:
    return CliContext(paths=AppPaths.resolve(sim_home))


def status_json(context: CliContext) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    code = status(CliContext(paths=context.paths), True, out)
    return code, json.loads(out.getvalue())


def flip_one_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 3] ^= 0x20
    path.write_bytes(bytes(blob))


def test_device_code_login_prints_the_code_and_the_address(context: CliContext, sim: SimStack) -> None:
    out = io.StringIO()

    code = login(context, True, out)

    text = out.getvalue()
    assert code == 0
    [user_code] = [line.split("enter the code ")[1].split()[0] for line in text.splitlines() if "the code" in line]
    assert f"{sim.servers['entra'].base_url}/devicelogin" in text and len(user_code) >= 8
    assert "Waiting for the sign-in to finish" in text
    tenant = sim.entra.tenant_id
    assert text.rstrip().endswith(f"Signed in to Microsoft 365 as Morgan Reyes <{OFFICER}> (tenant {tenant}).")


def test_status_logout_status(context: CliContext, sim: SimStack) -> None:
    assert status_json(context) == (0, {"account": None})
    login(context, True, io.StringIO())

    code, report = status_json(context)
    assert code == 0
    assert report["account"] == {"username": OFFICER, "tenant_id": sim.entra.tenant_id, "display_name": "Morgan Reyes"}

    out = io.StringIO()
    assert logout(CliContext(paths=context.paths), out) == 0
    assert "Signed out" in out.getvalue() and "yacht key" in out.getvalue()
    assert not context.paths.vault_file.exists() and not context.paths.key_file.exists()
    assert status_json(context) == (0, {"account": None})


def test_status_in_words(context: CliContext) -> None:
    out = io.StringIO()
    assert status(context, False, out) == 0
    assert out.getvalue().startswith("Not signed in to Microsoft 365. Run `celeste-desktop login`")

    login(context, True, io.StringIO())
    out = io.StringIO()
    status(CliContext(paths=context.paths), False, out)
    assert out.getvalue().startswith(f"Signed in to Microsoft 365 as Morgan Reyes <{OFFICER}>")


def test_status_report_is_a_dict_callers_extend(context: CliContext) -> None:
    report = status_report(context)
    report["sync"] = {"state": "idle"}
    out = io.StringIO()

    assert write_status(report, True, out) == 0
    assert json.loads(out.getvalue()) == {"account": None, "sync": {"state": "idle"}}


def test_tampered_vault_gives_the_message_and_is_moved_aside(context: CliContext) -> None:
    login(context, True, io.StringIO())
    flip_one_byte(context.paths.vault_file)

    code, report = status_json(context)

    assert code == 2 and report["account"] is None
    problem = report["problem"]
    assert isinstance(problem, dict)
    assert problem["title"] == "Saved sign-in could not be read"
    assert problem["message"].startswith("The saved sign-in could not be read; connect again.")
    assert "Traceback" not in json.dumps(report)
    assert not context.paths.vault_file.exists()
    assert len(list(context.paths.data_dir.glob("vault.bin.bad-*"))) == 1
    assert status_json(context) == (0, {"account": None})  # the next run starts clean


def test_login_after_tampering_says_so_and_signs_in_afresh(context: CliContext) -> None:
    login(context, True, io.StringIO())
    flip_one_byte(context.paths.vault_file)
    out = io.StringIO()

    code = login(CliContext(paths=context.paths), True, out)

    text = out.getvalue()
    assert code == 0
    assert text.startswith("Saved sign-in could not be read: The saved sign-in could not be read; connect again.")
    assert "Signed in to Microsoft 365" in text and "Traceback" not in text
    assert list(context.paths.data_dir.glob("vault.bin.bad-*"))


def test_browser_login(context: CliContext, sim: SimStack, monkeypatch: pytest.MonkeyPatch) -> None:
    answered: list[int] = []

    def browser(url: str, new: int = 0, autoraise: bool = True) -> bool:
        def visit() -> None:
            with httpx.Client(verify=sim.tls.client_context(), trust_env=False, timeout=10) as client:
                page = client.get(url).text  # auto-consent: the form_post page at once
                action = page.split("action='")[1].split("'")[0]
                fields = dict(
                    (chunk.split("name='")[1].split("'")[0], chunk.split("value='")[1].split("'")[0])
                    for chunk in page.split("<input type='hidden' ")[1:]
                )
                answered.append(client.post(action, data=fields).status_code)

        threading.Thread(target=visit, daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    out = io.StringIO()

    assert login(context, False, out) == 0

    assert answered == [200]
    assert out.getvalue().startswith("Opening the browser to sign in to Microsoft 365")
    assert f"as Morgan Reyes <{OFFICER}>" in out.getvalue()


def test_login_command_with_device_code_finishes_in_time(sim_home: Path, sim: SimStack) -> None:
    started = time.monotonic()

    done = subprocess.run(
        [sys.executable, "-m", "celeste_desktop", "--home", str(sim_home), "login", "--device-code"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert "/devicelogin" in done.stdout and "Signed in to Microsoft 365" in done.stdout
    assert "Traceback" not in done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "celeste_desktop", "--home", str(sim_home), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["account"]["username"] == OFFICER
