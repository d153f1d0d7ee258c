"""The folder tree as last seen, for a window that opens with no link.

:class:`RememberingFolderSource` wraps the live source: every drive list and folder listing
that succeeds is written to the cache folder (one small JSON file each), and the answers come
from there while the app is offline, or at start-up until the first link check has answered.
A folder never listed before says plainly that it needs the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from celeste_desktop.domain.errors import CelesteError, ServiceUnavailable
from celeste_desktop.domain.models import Drive, DriveKind, RemoteItem
from celeste_desktop.gui.folder_model import FolderSource

log = logging.getLogger(__name__)

Blocking = Callable[..., Awaitable[Any]]  # EngineHost.blocking: (function, *args) run in a worker
NEEDS_NETWORK = "needs the network; the app is offline"


class OfflineError(CelesteError):
    """An action that needs the network was asked for while the app is offline."""

    default_title = "Offline"


def needs_network(action: str, *, later: str = "") -> OfflineError:
    """The plain message for an action that cannot run offline (``later``: what happens instead)."""
    message = f"{action} {NEEDS_NETWORK}."
    return OfflineError(f"{message} {later}".strip(), title="Offline")


class FolderCache:
    """Drive lists and folder listings on disk, written whole with a rename (never half a file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_drives(self, drives: list[Drive]) -> None:
        self._write("drives", [dataclasses.asdict(drive) for drive in drives])

    def drives(self) -> list[Drive] | None:
        rows = self._read("drives")
        if rows is None:
            return None
        return [Drive(**{**row, "kind": DriveKind(row["kind"])}) for row in rows]

    def save_children(self, drive_id: str, item_id: str, items: list[RemoteItem]) -> None:
        self._write(_key(drive_id, item_id), [_item_row(item) for item in items])

    def children(self, drive_id: str, item_id: str) -> list[RemoteItem] | None:
        rows = self._read(_key(drive_id, item_id))
        if rows is None:
            return None
        return [_item_from(row) for row in rows]

    def _write(self, name: str, rows: list[dict[str, Any]]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{name}.json"
            partial = path.with_suffix(".part")
            partial.write_text(json.dumps(rows), encoding="utf-8")
            os.replace(partial, path)
        except OSError as exc:  # only a convenience: the live listing still shows
            log.warning("could not remember a folder listing: %s", exc)

    def _read(self, name: str) -> list[dict[str, Any]] | None:
        try:
            rows = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return rows if isinstance(rows, list) else None


class RememberingFolderSource:
    """A ``FolderSource`` that remembers what it listed and answers from memory when offline."""

    def __init__(self, live: FolderSource, cache: FolderCache, blocking: Blocking) -> None:
        self.live = live
        self.cache = cache
        # File I/O runs where the state queries run (the engine thread's workers): a thread of
        # the GUI loop's own executor finishing after the window closed would post to a dead loop.
        self._blocking = blocking
        self.offline = False
        self.cache_first = False  # at start-up, until the first link check has answered
        self.served_from_cache = False

    @property
    def problems(self) -> tuple[CelesteError, ...]:
        return tuple(getattr(self.live, "problems", ()))

    async def list_drives(self) -> list[Drive]:
        if self.offline or self.cache_first:
            remembered: list[Drive] | None = await self._blocking(self.cache.drives)
            if remembered is not None:
                self.served_from_cache = True
                return remembered
            if self.offline:
                raise needs_network("Listing the drives", later="They are listed when the link is back.")
        try:
            drives = await self.live.list_drives()
        except ServiceUnavailable:
            remembered = await self._blocking(self.cache.drives)
            if remembered is None:
                raise
            self.served_from_cache = True
            return remembered
        await self._blocking(self.cache.save_drives, drives)
        return drives

    async def list_children(self, drive_id: str, item_id: str) -> list[RemoteItem]:
        if self.offline or self.cache_first:
            remembered: list[RemoteItem] | None = await self._blocking(self.cache.children, drive_id, item_id)
            if remembered is not None:
                self.served_from_cache = True
                return remembered
            if self.offline:
                raise needs_network("This folder was not opened before the link went down: listing it")
        try:
            items = await self.live.list_children(drive_id, item_id)
        except ServiceUnavailable:
            remembered = await self._blocking(self.cache.children, drive_id, item_id)
            if remembered is None:
                raise
            self.served_from_cache = True
            return remembered
        await self._blocking(self.cache.save_children, drive_id, item_id, items)
        return items


def _key(drive_id: str, item_id: str) -> str:
    return hashlib.sha256(f"{drive_id}\n{item_id}".encode()).hexdigest()[:32]


def _item_row(item: RemoteItem) -> dict[str, Any]:
    row = dataclasses.asdict(item)
    row["modified"] = item.modified.isoformat() if item.modified else None
    return row


def _item_from(row: dict[str, Any]) -> RemoteItem:
    modified = row.get("modified")
    return RemoteItem(**{**row, "modified": datetime.fromisoformat(modified) if modified else None})
