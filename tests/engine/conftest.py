"""Fixtures of the engine tests: a small drive built by hand (ids made up, names as given).

Test modules get the builder through the ``drive`` fixture rather than by importing this file:
every tests folder has a ``conftest`` module and importing one by name is ambiguous."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from celeste_desktop.cli.context import CliContext
from celeste_desktop.cli.main import run
from celeste_desktop.compose import Services, open_services
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.domain.models import DeliveredFile, PlannedAction, RemoteItem

DRIVE = "drive-1"
YACHT = "yacht-1"


class Drive:
    """A drive index under construction: ``folder``/``file`` add items under a parent id."""

    def __init__(self, drive_id: str = DRIVE) -> None:
        self.drive_id = drive_id
        self.root = RemoteItem(drive_id, "root", None, "root", True, is_root=True)
        self.items: dict[str, RemoteItem] = {"root": self.root}

    def folder(self, item_id: str, name: str, parent: str = "root") -> RemoteItem:
        item = RemoteItem(self.drive_id, item_id, parent, name, True)
        self.items[item_id] = item
        return item

    def file(
        self,
        item_id: str,
        name: str,
        parent: str = "root",
        *,
        size: int = 100,
        ctag: str | None = None,
        quickxor: str | None = None,
        package_type: str | None = None,
        malware: bool = False,
    ) -> RemoteItem:
        item = RemoteItem(
            self.drive_id,
            item_id,
            parent,
            name,
            False,
            size=size,
            ctag=ctag if ctag is not None else f"ctag-{item_id}-1",
            quickxor=quickxor if quickxor is not None else f"hash-{item_id}-1",
            package_type=package_type,
            malware=malware,
        )
        self.items[item_id] = item
        return item

    def change(self, item_id: str, **fields: Any) -> RemoteItem:
        item = replace(self.items[item_id], **fields)
        self.items[item_id] = item
        return item

    @staticmethod
    def deliver(actions: Iterable[PlannedAction], **fields: Any) -> dict[str, DeliveredFile]:
        """What storage holds once ``actions`` (uploads) have run, with ``fields`` changed."""
        records = {
            action.item_id: DeliveredFile(
                drive_id=action.drive_id,
                item_id=action.item_id,
                storage_key=action.storage_key,
                ctag=action.ctag,
                quickxor=action.quickxor,
                size=action.size,
                sha256="0" * 64,
                folder_path=action.folder_path,
                name=action.name,
            )
            for action in actions
        }
        return {item_id: replace(record, **fields) for item_id, record in records.items()}


@pytest.fixture
def drive() -> Drive:
    return Drive()


@pytest.fixture
def ready_home(sim_home: Path) -> Path:
    """``sim_home`` signed in with a device code, as a person would with the CLI."""
    code = run(["--home", str(sim_home), "login", "--device-code"], stdin=io.StringIO(), stdout=io.StringIO(),
               stderr=io.StringIO())  # fmt: skip
    assert code == 0
    return sim_home


@pytest.fixture
async def services(ready_home: Path) -> AsyncIterator[Services]:
    """The app's services for ``ready_home``, with the signed-in account recorded."""
    context = CliContext(paths=AppPaths.resolve(ready_home))
    built = open_services(context.paths, context.settings, context.secrets())
    account = built.session.current_account()
    assert account is not None
    built.state.set_account(account.username, account.tenant_id or "")
    yield built
    await built.aclose()
