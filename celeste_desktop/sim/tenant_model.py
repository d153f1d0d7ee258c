"""The simulated Microsoft 365 tenant's model: drives, sites, items and their change log.

Items hold no bytes: a file's content is a pure function of its seed, content version, kind,
size and original title (see ``graph_items``), so a tenant of 100,000 items costs a few tens of
MB. Every change bumps a tenant-wide sequence number and is appended to the drive's change
log; delta tokens are positions in that log. ``tenant`` builds the demo yacht on this model.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import NamedTuple

ROOT, FOLDER, FILE, NOTEBOOK = "root", "folder", "file", "notebook"
BUSINESS, LIBRARY = "business", "documentLibrary"
_FORBIDDEN = set('"*:<>?/\\|')
_EPOCH_2019 = float(calendar.timegm((2019, 1, 1, 0, 0, 0)))


class TenantError(ValueError):
    """A control request the tenant refuses; ``code`` is the Graph error code it maps to."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LogEntry(NamedTuple):
    """One change: its sequence number, the item, and the item's parent before a move."""

    seq: int
    item_id: str
    old_parent_id: str | None


@dataclass(slots=True, eq=False)
class Item:
    """A driveItem; ``title`` is the name the content was generated with (renames keep it)."""

    id: str
    drive_id: str
    name: str
    parent_id: str | None
    kind: str
    created: float
    modified: float
    seq: int = 0
    etag_version: int = 1
    content_kind: str = ""
    size: int = 0
    content_seed: int = 0
    content_version: int = 1
    title: str = ""
    malware: str | None = None
    omit_hash: bool = False
    corrupt: bool = False
    deleted: bool = False
    children: dict[str, str] | None = None  # case-folded name -> id, live children only
    sorted_children: list[str] | None = None
    content_info: tuple[int, int, str] | None = None  # (content_version, size, quickXorHash)

    @property
    def is_container(self) -> bool:
        return self.kind in (ROOT, FOLDER, NOTEBOOK)


@dataclass(slots=True, eq=False)
class Drive:
    """A drive (OneDrive for Business or a document library) with its change log."""

    id: str
    name: str
    drive_type: str
    root_id: str
    web_url: str
    server_path: str  # decoded, e.g. /personal/<user>/Documents: Graph's 400-character rule counts it
    owner_upn: str
    owner_name: str
    created: float
    site_id: str | None = None
    folder_delta_supported: bool = True
    delta_epoch: int = 0
    log: list[LogEntry] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Site:
    id: str
    name: str
    display_name: str
    web_url: str
    hostname: str
    created: float
    drive_ids: list[str] = field(default_factory=list)


class Tenant:
    """Drives, sites and items of one tenant; every method is thread-safe (one re-entrant lock)."""

    def __init__(
        self,
        *,
        seed: int = 1,
        domain: str = "mysimyacht",
        user_upn: str = "it.officer@mysimyacht.onmicrosoft.com",
        user_name: str = "Morgan Reyes",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.domain = domain
        self.user_upn = user_upn
        self.user_name = user_name
        self.clock = clock
        self.lock = threading.RLock()
        self.items: dict[str, Item] = {}
        self.drives: dict[str, Drive] = {}
        self.sites: dict[str, Site] = {}
        self.seq = 0
        self.personal_drive_id = ""
        self._id_counter = 0

    # -- identifiers -----------------------------------------------------------------------

    def _digest(self, label: str, size: int) -> bytes:
        return hashlib.blake2b(f"{self.seed}:{label}".encode(), digest_size=size).digest()

    def new_item_id(self) -> str:
        self._id_counter += 1
        raw = base64.b32encode(self._digest(f"item{self._id_counter}", 20)).decode("ascii")
        return "01" + raw[:32]

    def new_guid(self, label: str) -> str:
        raw = self._digest(label, 16).hex()
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"

    @staticmethod
    @functools.lru_cache(maxsize=262_144)  # rendered for every listed item: eTag, cTag, download URL
    def item_guid(item_id: str) -> str:
        raw = hashlib.md5(item_id.encode(), usedforsecurity=False).hexdigest().upper()
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"

    # -- building --------------------------------------------------------------------------

    def add_drive(self, *, name: str, drive_type: str, web_url: str, server_path: str,
                  site_id: str | None = None) -> Drive:
        with self.lock:
            label = f"drive{len(self.drives)}"
            drive_id = "b!" + base64.urlsafe_b64encode(self._digest(label, 48)).decode("ascii")
            root = Item(self.new_item_id(), drive_id, "root", None, ROOT, _EPOCH_2019, _EPOCH_2019,
                        children={})
            self.items[root.id] = root
            drive = Drive(drive_id, name, drive_type, root.id, web_url, server_path,
                          self.user_upn, self.user_name, _EPOCH_2019, site_id)
            self.drives[drive_id] = drive
            return drive

    def _insert(self, item: Item, *, log: bool) -> Item:
        parent = self.container(item.parent_id or "")
        key = item.name.casefold()
        if parent.children is None or key in parent.children:
            raise TenantError("nameAlreadyExists", f"an item named {item.name!r} already exists here")
        parent.children[key] = item.id
        parent.sorted_children = None
        self.items[item.id] = item
        if log:
            self._log(item, None)
        return item

    def _log(self, item: Item, old_parent_id: str | None) -> None:
        self.seq += 1
        item.seq = self.seq
        self.drives[item.drive_id].log.append(LogEntry(self.seq, item.id, old_parent_id))

    def _new(self, parent_id: str, name: str, kind: str, when: float | None) -> Item:
        _check_name(name)
        parent = self.container(parent_id)
        stamp = self.clock() if when is None else when
        return Item(self.new_item_id(), parent.drive_id, name, parent.id, kind, stamp, stamp,
                    children={} if kind != FILE else None)

    def add_folder(self, parent_id: str, name: str, *, when: float | None = None,
                   log: bool = True) -> Item:
        with self.lock:
            return self._insert(self._new(parent_id, name, FOLDER, when), log=log)

    def add_notebook(self, parent_id: str, name: str, *, when: float | None = None,
                     log: bool = True) -> Item:
        with self.lock:
            return self._insert(self._new(parent_id, name, NOTEBOOK, when), log=log)

    def add_file(self, parent_id: str, name: str, size: int, *, seed: int | None = None,
                 kind: str | None = None, when: float | None = None, log: bool = True) -> Item:
        """A file whose bytes are generated on demand: ``kind`` defaults from the extension."""
        if size < 0:
            raise TenantError("invalidRequest", "size must be zero or more")
        with self.lock:
            item = self._new(parent_id, name, FILE, when)
            item.size = size
            item.content_kind = kind or kind_for(name, size)
            item.content_seed = self._content_seed(item.id) if seed is None else seed
            item.title = name
            return self._insert(item, log=log)

    def _content_seed(self, item_id: str) -> int:
        return int.from_bytes(self._digest(item_id, 8), "little")

    # -- changes ---------------------------------------------------------------------------

    def change_content(self, item_id: str, size: int | None = None) -> Item:
        """New content: new cTag, eTag and hash; the size changes a little unless given."""
        with self.lock:
            item = self.live(item_id)
            if item.kind != FILE:
                raise TenantError("invalidRequest", "only files have content")
            item.content_version += 1
            item.etag_version += 1
            if size is not None:
                item.size = size
            elif item.size:
                item.size = max(1, item.size + Random(item.content_seed + item.content_version)
                                .randint(-item.size // 10, item.size // 10 + 64))
            item.modified = self.clock()
            self._log(item, None)
            return item

    def rename(self, item_id: str, name: str) -> Item:
        with self.lock:
            return self.move(item_id, self.live(item_id).parent_id or "", name)

    def move(self, item_id: str, parent_id: str, name: str | None = None) -> Item:
        """Move and/or rename: the eTag changes, the cTag (content) does not."""
        with self.lock:
            item = self.live(item_id)
            if item.kind == ROOT:
                raise TenantError("invalidRequest", "the root cannot move")
            new_name = item.name if name is None else name
            _check_name(new_name)
            target = self.container(parent_id)
            if target.drive_id != item.drive_id:
                raise TenantError("invalidRequest", "moves across drives are copies in Graph")
            if self.is_within(target, item.id):
                raise TenantError("invalidRequest", "a folder cannot move into itself")
            old_parent = self.container(item.parent_id or "")
            key = new_name.casefold()
            assert target.children is not None and old_parent.children is not None
            if key in target.children and target.children[key] != item.id:
                raise TenantError("nameAlreadyExists", f"an item named {new_name!r} already exists")
            del old_parent.children[item.name.casefold()]
            old_parent.sorted_children = None
            target.children[key] = item.id
            target.sorted_children = None
            moved_from = old_parent.id if old_parent.id != target.id else None
            item.name, item.parent_id = new_name, target.id
            item.etag_version += 1
            item.modified = self.clock()
            self._log(item, moved_from)
            return item

    def delete(self, item_id: str) -> None:
        """Delete an item and everything below it; each gets a tombstone in the change log."""
        with self.lock:
            item = self.live(item_id)
            if item.kind == ROOT:
                raise TenantError("invalidRequest", "the root cannot be deleted")
            parent = self.container(item.parent_id or "")
            assert parent.children is not None
            del parent.children[item.name.casefold()]
            parent.sorted_children = None
            for doomed in reversed(self.walk(item.id)):
                doomed.deleted = True
                doomed.etag_version += 1
                doomed.modified = self.clock()
                self._log(doomed, None)

    def set_malware(self, item_id: str, description: str | None) -> Item:
        with self.lock:
            item = self.live(item_id)
            item.malware = description
            item.etag_version += 1
            self._log(item, None)
            return item

    # -- queries ---------------------------------------------------------------------------

    def get(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def live(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None or item.deleted:
            raise TenantError("itemNotFound", "The resource could not be found.")
        return item

    def container(self, item_id: str) -> Item:
        item = self.live(item_id)
        if not item.is_container:
            raise TenantError("invalidRequest", f"{item.name!r} is not a folder")
        return item

    def drive_of(self, item: Item) -> Drive:
        return self.drives[item.drive_id]

    def child(self, folder: Item, name: str) -> Item | None:
        if folder.children is None:
            return None
        child_id = folder.children.get(name.casefold())
        return self.items[child_id] if child_id else None

    def resolve(self, start: Item, segments: list[str]) -> Item | None:
        """Path addressing below ``start``; case-insensitive like SharePoint."""
        item: Item | None = start
        for segment in segments:
            if item is None:
                return None
            item = self.child(item, segment)
        return item

    def resolve_path(self, drive_id: str, path: str) -> Item:
        """``/01_BRIDGE/Navigation`` (decoded) in a drive; raises ``TenantError`` when missing."""
        with self.lock:
            root = self.live(self.drives[drive_id].root_id)
            found = self.resolve(root, [s for s in path.split("/") if s])
            if found is None:
                raise TenantError("itemNotFound", f"no item at {path!r}")
            return found

    def ancestors(self, item: Item) -> list[Item]:
        """Parents of ``item`` from the drive root down (deleted parents included)."""
        chain: list[Item] = []
        parent_id = item.parent_id
        while parent_id is not None:
            parent = self.items[parent_id]
            chain.append(parent)
            parent_id = parent.parent_id
        chain.reverse()
        return chain

    def path_names(self, item: Item) -> list[str]:
        return [a.name for a in self.ancestors(item)[1:]] + ([item.name] if item.kind != ROOT else [])

    def is_within(self, item: Item, scope_id: str) -> bool:
        """True when ``scope_id`` is ``item`` or one of its ancestors."""
        current: Item | None = item
        while current is not None:
            if current.id == scope_id:
                return True
            current = self.items.get(current.parent_id) if current.parent_id else None
        return False

    def sorted_children(self, folder: Item) -> list[str]:
        """Children ids in listing order (folders first, then by name), cached per folder."""
        if folder.sorted_children is None:
            kids = [self.items[i] for i in (folder.children or {}).values()]
            kids.sort(key=lambda i: (i.kind == FILE, i.name.casefold(), i.id))
            folder.sorted_children = [i.id for i in kids]
        return folder.sorted_children

    def walk(self, top_id: str) -> list[Item]:
        """``top_id`` and its live descendants, parents before children."""
        out: list[Item] = []
        stack = [self.items[top_id]]
        while stack:
            item = stack.pop()
            out.append(item)
            if item.children:
                stack.extend(self.items[i] for i in reversed(self.sorted_children(item)))
        return out

    def count(self) -> int:
        return sum(1 for i in self.items.values() if not i.deleted and i.kind != ROOT)


def _check_name(name: str) -> None:
    if not name or name != name.strip() or name.endswith(".") or _FORBIDDEN & set(name):
        raise TenantError("invalidRequest", f"{name!r} is not a valid OneDrive name")


def kind_for(name: str, size: int) -> str:
    """Content generator for a name: pdf, docx, xlsx, jpeg; anything else is opaque bytes."""
    if size == 0:
        return "empty"
    if name.startswith("~$"):  # Office owner files: 162 bytes of lock data, not a document
        return "bin"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"pdf": "pdf", "docx": "docx", "xlsx": "xlsx", "jpg": "jpeg", "jpeg": "jpeg"}.get(ext, "bin")
