"""The folder tree of one drive as a Qt item model: lazy asynchronous listing, tri-state ticks,
urgent marks, and the selection as ``SelectionEntry`` rows.

A node's own tick (``included``) says whether its direct files are copied; the box shows
Checked when the node and everything loaded or remembered below it are included, Unchecked
when none is, PartiallyChecked otherwise. So unticking every subfolder of a ticked folder
leaves it partial: its own files, and folders created there later, are still copied.

The selection is minimal, as the engine reads it (the nearest entry decides): a folder is listed
only where its (ticked, urgent) differs from its parent's, so exclusions appear only under an
included ancestor. Entries for folders not loaded yet (restored with :meth:`set_selection`,
or left by another drive) are kept as *hints* on the deepest loaded folder on their path; they
count toward its partial state, move down as folders load, and apply when their id appears.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
import time
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractItemModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import Drive, RemoteItem, SelectionEntry
from celeste_desktop.domain.rules import SkipPatterns, SkipReason, format_size, skip_reason

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
ROOT_ALIAS = "root"  # Graph's alias for a drive's root item (/drives/{id}/items/root/children)
BATCH_SIZE = 500  # rows per beginInsertRows; the event loop runs between batches
_SORT_SLICE = 5_000
_SLICE_S = 0.008  # insert batches for this long, then let the loop run
_MAX_SLICE_S = 0.2
_NO_INDEX = QModelIndex()
# Combined once: a Python enum "|" per call is slow, and flags() runs twice per row per relayout.
_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_LEAF_FLAGS = _ROW_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_CHECKABLE_FLAGS = _ROW_FLAGS | Qt.ItemFlag.ItemIsUserCheckable
_ROLE = Qt.ItemDataRole


class FolderSource(Protocol):
    """What the tree reads from Microsoft Graph (the lead adapts the Graph client to it)."""

    async def list_children(self, drive_id: str, item_id: str) -> list[RemoteItem]:
        """Folders and files directly inside ``item_id`` (``"root"`` for the drive root); may
        raise ``CelesteError``."""
        ...

    async def list_drives(self) -> list[Drive]: ...


class Column(enum.IntEnum):
    NAME = 0
    ITEMS = 1
    SIZE = 2
    URGENT = 3
    NOTE = 4


HEADERS = ("Name", "Items", "Size", "Urgent", "Note")
_HEADER_TIPS = (
    "Tick a folder to copy it with everything inside",
    "Files and folders inside, as OneDrive counts them",
    "Total size of the folder in OneDrive",
    "Urgent folders are copied first",
    "Why an item cannot be copied",
)


class RowKind(enum.Enum):
    FOLDER = "folder"
    FILE = "file"
    LOADING = "loading"  # placeholder while a listing runs
    ERROR = "error"  # placeholder after a listing failed: retry it


class Role(enum.IntEnum):
    KIND = _ROLE.UserRole + 1  # RowKind
    ITEM_ID = _ROLE.UserRole + 2
    PATH = _ROLE.UserRole + 3  # "Folder/Sub" from the drive root


class _Load(enum.Enum):
    UNLOADED = 0
    LOADING = 1
    LOADED = 2
    FAILED = 3


class BackgroundTasks:
    """Tasks kept referenced until done (asyncio keeps only weak references) and cancellable
    together when what they load is superseded."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        loop = self._loop or _current_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)

    async def settled(self) -> None:
        """Return once no task is left, including tasks started meanwhile."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _current_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # called from a Qt slot before qasync runs: use the loop set for it
        return asyncio.get_event_loop_policy().get_event_loop()


class _Node:
    __slots__ = (
        "_kids", "by_name", "hints", "included", "item", "kind", "load", "message", "n_exc",
        "n_inc", "parent", "reason", "routes", "row", "task", "tickable", "uid", "urgent",
    )  # fmt: skip

    def __init__(self, uid: int, item: RemoteItem | None, parent: _Node | None, row: int, kind: RowKind) -> None:
        self.uid = uid
        self.item = item
        self.parent = parent
        self.row = row
        self.kind = kind
        # Item rows, then at most one placeholder row. Created on first use: an empty list is
        # one more object for the garbage collector to scan, 100,000 times in a big folder.
        self._kids: list[_Node] | None = None
        self.by_name: dict[str, _Node] = {}  # tickable children by casefolded name (routing hints)
        self.tickable = False
        self.reason: SkipReason | None = None
        self.included: bool = parent.included if parent is not None else False
        self.urgent: bool = parent.urgent if parent is not None else False
        self.n_inc = 0  # included marks below: loaded tickable descendants and hints
        self.n_exc = 0
        self.hints: dict[str, SelectionEntry] = {}
        self.routes: dict[str, list[str]] | None = None  # next path segment -> hint ids, while loading
        self.load = _Load.UNLOADED
        self.task: asyncio.Task[None] | None = None
        self.message = ""

    @property
    def children(self) -> Sequence[_Node]:
        return self._kids if self._kids is not None else ()

    def kids(self) -> list[_Node]:
        """The children, to change them."""
        if self._kids is None:
            self._kids = []
        return self._kids

    @property
    def placeholder(self) -> _Node | None:
        last = self.children[-1] if self.children else None
        return last if last is not None and last.item is None else None

    @property
    def effective(self) -> tuple[bool, bool]:
        """(included, urgent) as the engine reads them; urgency only counts when included."""
        return self.included, self.included and self.urgent

    def check_state(self) -> Qt.CheckState:
        if self.included:
            return Qt.CheckState.Checked if self.n_exc == 0 else Qt.CheckState.PartiallyChecked
        return Qt.CheckState.Unchecked if self.n_inc == 0 else Qt.CheckState.PartiallyChecked

    def descendants(self) -> Iterator[_Node]:
        """This node and its loaded tickable descendants, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(child for child in node.children if child.tickable)


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


class FolderModel(QAbstractItemModel):
    """The folders of one drive (files too with ``show_files``), loaded as they are expanded."""

    selection_changed = Signal()  # the user ticked, unticked or marked urgent
    load_failed = Signal(QModelIndex)  # the error row of a failed listing
    folder_loaded = Signal(QModelIndex)  # a listing finished (invalid index: the top level)

    def __init__(
        self,
        source: FolderSource,
        *,
        show_files: bool = False,
        patterns: SkipPatterns | None = None,
        batch_size: int = BATCH_SIZE,
        loop: asyncio.AbstractEventLoop | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._source = source
        self._show_files = show_files
        self._patterns = patterns or SkipPatterns()
        self._batch_size = max(1, batch_size)
        self._tasks = BackgroundTasks(loop)
        self._drive_id: str | None = None
        self._other_drives: dict[str, list[SelectionEntry]] = {}
        self._next_uid = 0
        self._nodes: dict[int, _Node] = {}
        self._by_item: dict[str, _Node] = {}
        self._hint_home: dict[str, _Node] = {}
        self._root = self._new_node(None, None, 0, RowKind.FOLDER)

    # -- drives, selection -------------------------------------------------------------------

    @property
    def drive_id(self) -> str | None:
        return self._drive_id

    def set_drive(self, drive_id: str | None) -> None:
        """Show another drive: in-flight listings are cancelled, this drive's ticks kept."""
        if drive_id == self._drive_id:
            return
        if self._drive_id is not None:
            self._other_drives[self._drive_id] = self._current_entries()
        self._reset(drive_id, self._other_drives.pop(drive_id, []) if drive_id else [])

    def reload(self) -> None:
        """List the drive again from the top, keeping the ticks."""
        self._reset(self._drive_id, self._current_entries())

    def shutdown(self) -> None:
        self._tasks.cancel_all()

    async def settled(self) -> None:
        """Wait until no listing runs (for tests and the demo)."""
        await self._tasks.settled()

    def is_busy(self) -> bool:
        return len(self._tasks) > 0

    def selection(self) -> list[SelectionEntry]:
        """The minimal entries of every drive: this one's in tree order, then the others'."""
        others = [entry for entries in self._other_drives.values() for entry in entries]
        return self._current_entries() + others

    def set_selection(self, entries: Iterable[SelectionEntry]) -> None:
        """Replace the selection (restored from the store); ticks apply as folders load."""
        current: dict[str, SelectionEntry] = {}
        self._other_drives = {}
        for entry in entries:
            if entry.drive_id == self._drive_id:
                current[entry.item_id] = entry
            else:
                self._other_drives.setdefault(entry.drive_id, []).append(entry)
        for node in self._root.descendants():
            for item_id in node.hints:
                self._hint_home.pop(item_id, None)
            node.hints.clear()
            if node is not self._root:
                found = current.pop(node.item.item_id if node.item else "", None)
                node.included, node.urgent = (found.included, found.urgent) if found else _inherited(node)
        for entry in current.values():
            self._attach(entry)
        self._recount(self._root)
        self._emit_subtree(self._root)

    # -- ticks and urgency ---------------------------------------------------------------------

    def item(self, index: Index) -> RemoteItem | None:
        node = self._node(index)
        return node.item if node is not None else None

    def row_kind(self, index: Index) -> RowKind | None:
        node = self._node(index)
        return node.kind if node is not None else None

    def index_for_item(self, item_id: str, column: int = 0) -> QModelIndex:
        node = self._by_item.get(item_id)
        return self._index(node, column) if node is not None else QModelIndex()

    def is_checkable(self, index: Index) -> bool:
        node = self._node(index)
        return node is not None and node.tickable

    def check_state(self, index: Index) -> Qt.CheckState | None:
        node = self._node(index)
        return node.check_state() if node is not None and node.tickable else None

    def toggle(self, index: Index) -> bool:
        state = self.check_state(index)
        return state is not None and self.set_checked(index, state is not Qt.CheckState.Checked)

    def set_checked(self, index: Index, checked: bool) -> bool:
        """Tick or untick a folder with all its loaded (and remembered) descendants."""
        node = self._node(index)
        if node is None or not node.tickable:
            return False
        target = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        if node.check_state() is target:
            return False
        urgent = checked and (node.urgent or _inherited(node)[1])
        before = _marks(node)
        for each in node.descendants():
            each.included, each.urgent = checked, urgent
            for item_id in each.hints:
                self._hint_home.pop(item_id, None)
            each.hints.clear()
            each.routes = {} if each.routes is not None else None
        self._recount(node)
        self._bubble_change(node, before)
        self._emit_subtree(node)
        self.selection_changed.emit()
        return True

    def can_mark_urgent(self, index: Index) -> bool:
        node = self._node(index)
        return node is not None and node.tickable and node.check_state() is not Qt.CheckState.Unchecked

    def is_urgent(self, index: Index) -> bool:
        node = self._node(index)
        return node is not None and node.tickable and node.urgent and node.check_state() is not Qt.CheckState.Unchecked

    def set_urgent(self, index: Index, urgent: bool) -> bool:
        """Mark a ticked folder (and what is ticked below it) to be copied first."""
        node = self._node(index)
        if node is None or not self.can_mark_urgent(index) or self.is_urgent(index) == urgent:
            return False
        for each in node.descendants():
            each.urgent = urgent
            for item_id, entry in each.hints.items():
                if entry.included:
                    each.hints[item_id] = _with_urgent(entry, urgent)
        self._emit_subtree(node)
        self.selection_changed.emit()
        return True

    # -- loading ---------------------------------------------------------------------------------

    def retry(self, index: Index) -> bool:
        """List a folder again after a failure (``index``: the folder or its error row)."""
        node = self._node(index) if index.isValid() else self._root
        if node is not None and node.item is None and node.parent is not None:
            node = node.parent  # the error row stands for its folder
        if node is None or node.load is not _Load.FAILED:
            return False
        self._unload(node)
        self._start_load(node)
        return True

    def cancel_loading(self, index: Index) -> bool:
        """Cancel a folder's listing in flight (it was collapsed); expanding lists it again."""
        node = self._node(index) if index.isValid() else self._root
        if node is None or node.load is not _Load.LOADING:
            return False
        self._unload(node)
        return True

    def canFetchMore(self, parent: Index) -> bool:
        node = self._node(parent) if parent.isValid() else self._root
        if node is None or self._drive_id is None:
            return False
        return node.kind is RowKind.FOLDER and node.load is _Load.UNLOADED

    def fetchMore(self, parent: Index) -> None:
        if self.canFetchMore(parent):
            node = self._node(parent) if parent.isValid() else self._root
            assert node is not None
            self._start_load(node)

    def _start_load(self, node: _Node) -> None:
        node.load = _Load.LOADING
        self._insert_placeholder(node, RowKind.LOADING, "Loading…")
        node.task = self._tasks.spawn(self._list(node, self._drive_id or ""))

    async def _list(self, node: _Node, drive_id: str) -> None:
        try:
            items = await self._source.list_children(drive_id, node.item.item_id if node.item else ROOT_ALIAS)
        except CelesteError as exc:
            self._fail(node, f"{exc.title}: {exc}")
            return
        except Exception as exc:  # a bug in the source must not leave "Loading…" for ever
            log.exception("listing %s failed", node.item.item_id if node.item else ROOT_ALIAS)
            self._fail(node, f"Unexpected error: {type(exc).__name__}")
            return
        total, ordered = await self._in_order(items)
        parts = self._parts(node)
        node.routes = self._routes(node, parts)
        done, budget, slice_start = 0, _SLICE_S, time.perf_counter()
        while batch := list(itertools.islice(ordered, self._batch_size)):
            if done and time.perf_counter() - slice_start >= budget:
                self._set_placeholder_text(node, f"Loading… {done:,} of {total:,}")
                paused = time.perf_counter()
                await asyncio.sleep(0)  # let Qt paint and take clicks
                slice_start = time.perf_counter()
                # A tree view with this folder open lays all its rows out again after each
                # pause (QTreeView::rowsInserted). Inserting for about as long as the pause took
                # makes the slices grow geometrically, so a 100,000-row folder costs a dozen
                # relayouts rather than two hundred.
                budget = min(max(_SLICE_S, slice_start - paused), _MAX_SLICE_S)
            self._insert_batch(node, batch, parts)
            done += len(batch)
        placeholder = node.placeholder
        node.load, node.task, node.routes = _Load.LOADED, None, None
        if placeholder is not None:
            self._remove_rows(node, placeholder.row, placeholder.row)
        self.folder_loaded.emit(self._index(node))

    async def _in_order(self, items: list[RemoteItem]) -> tuple[int, Iterator[RemoteItem]]:
        """The items to show, folders (and notebooks) then files, by name: filtered and sorted
        in slices merged lazily, because sorting 100,000 names at once blocks for ~0.3 s."""
        folders: list[list[RemoteItem]] = []
        files: list[list[RemoteItem]] = []
        for start in range(0, len(items), _SORT_SLICE):
            if start:
                await asyncio.sleep(0)
            shown = [item for item in items[start : start + _SORT_SLICE] if self._is_shown(item)]
            folders.append(sorted((item for item in shown if _folder_like(item)), key=_name_key))
            files.append(sorted((item for item in shown if not _folder_like(item)), key=_name_key))
        total = sum(map(len, folders)) + sum(map(len, files))
        merged = itertools.chain(heapq.merge(*folders, key=_name_key), heapq.merge(*files, key=_name_key))
        return total, merged

    def _is_shown(self, item: RemoteItem) -> bool:
        return not item.is_root and (self._show_files or _folder_like(item))

    def _insert_batch(self, node: _Node, items: list[RemoteItem], parts: tuple[str, ...]) -> None:
        first = len(node.children) - 1  # before the Loading row
        self.beginInsertRows(self._index(node), first, first + len(items) - 1)
        made = [self._make_child(node, item, parts, first + offset) for offset, item in enumerate(items)]
        node.kids()[first:first] = made
        node.kids()[-1].row = len(node.children) - 1
        gained = [child for child in made if child.tickable]
        included = sum(child.included for child in gained)
        self._bubble(node, included, len(gained) - included)
        self.endInsertRows()
        self._emit_ancestors(node)

    def _make_child(self, parent: _Node, item: RemoteItem, parts: tuple[str, ...], row: int) -> _Node:
        kind = RowKind.FOLDER if item.is_folder else RowKind.FILE
        child = self._new_node(item, parent, row, kind)
        facets: dict[str, object] = {}
        if item.malware:
            facets["malware"] = {}
        if item.package_type is not None:
            facets["package"] = {"type": item.package_type}
        size = None if item.is_folder else item.size
        child.reason = skip_reason(parts, item.name, size, facets, self._patterns)
        child.tickable = kind is RowKind.FOLDER and child.reason is None and (parent.tickable or parent is self._root)
        self._by_item[item.item_id] = child
        home = self._hint_home.pop(item.item_id, None)
        remembered = home.hints.pop(item.item_id, None) if home is not None else None
        if remembered is not None:  # an entry for this very folder
            self._bubble(home, -remembered.included, -(not remembered.included))
            if child.tickable:
                child.included, child.urgent = remembered.included, remembered.urgent
        if child.tickable:
            key = item.name.casefold()
            parent.by_name[key] = child
            for hint_id in (parent.routes or {}).pop(key, ()):
                entry = parent.hints.pop(hint_id, None)
                if entry is None:  # dropped or resolved since the route was drawn
                    continue
                child.hints[hint_id] = entry
                self._hint_home[hint_id] = child
                child.n_inc += entry.included
                child.n_exc += not entry.included
        return child

    def _routes(self, node: _Node, parts: tuple[str, ...]) -> dict[str, list[str]]:
        """Which child each of the node's hints goes down into, by the next segment of its path."""
        prefix = [part.casefold() for part in parts]
        routes: dict[str, list[str]] = {}
        for item_id, entry in node.hints.items():
            segments = [part.casefold() for part in _split(entry.path)]
            # Deeper than a child: a path naming the child itself with another id is stale.
            if len(segments) > len(prefix) + 1 and segments[: len(prefix)] == prefix:
                routes.setdefault(segments[len(prefix)], []).append(item_id)
        return routes

    def _fail(self, node: _Node, message: str) -> None:
        node.load, node.task = _Load.FAILED, None
        placeholder = node.placeholder
        if placeholder is None:
            return
        placeholder.kind, placeholder.message = RowKind.ERROR, message
        index = self._index(placeholder)
        self.dataChanged.emit(index, self._index(placeholder, len(Column) - 1))
        self.load_failed.emit(index)

    def _unload(self, node: _Node) -> None:
        """Forget a folder's rows (its ticks below become hints) so it can be listed afresh."""
        if node.task is not None:
            node.task.cancel()
        before = _marks(node)
        kept = self._entries_below(node)
        if node.children:
            self._remove_rows(node, 0, len(node.children) - 1)
        for entry in kept:
            node.hints[entry.item_id] = entry
            self._hint_home[entry.item_id] = node
        node.load, node.task, node.routes, node.by_name = _Load.UNLOADED, None, None, {}
        node.n_inc = sum(entry.included for entry in node.hints.values())
        node.n_exc = len(node.hints) - node.n_inc
        if node is not self._root:
            self._bubble_change(node, before)
            self._emit_ancestors(node)

    def _reset(self, drive_id: str | None, entries: list[SelectionEntry]) -> None:
        self._tasks.cancel_all()
        self.beginResetModel()
        self._drive_id = drive_id
        self._nodes.clear()
        self._by_item.clear()
        self._hint_home.clear()
        self._root = self._new_node(None, None, 0, RowKind.FOLDER)
        for entry in entries:
            self._attach(entry)
        self.endResetModel()
        if drive_id is not None:
            self._start_load(self._root)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _new_node(self, item: RemoteItem | None, parent: _Node | None, row: int, kind: RowKind) -> _Node:
        self._next_uid += 1
        node = _Node(self._next_uid, item, parent, row, kind)
        self._nodes[node.uid] = node
        return node

    def _insert_placeholder(self, node: _Node, kind: RowKind, message: str) -> None:
        row = len(node.children)
        self.beginInsertRows(self._index(node), row, row)
        placeholder = self._new_node(None, node, row, kind)
        placeholder.message = message
        node.kids().append(placeholder)
        self.endInsertRows()

    def _set_placeholder_text(self, node: _Node, message: str) -> None:
        placeholder = node.placeholder
        if placeholder is not None:
            placeholder.message = message
            index = self._index(placeholder)
            self.dataChanged.emit(index, index)

    def _remove_rows(self, node: _Node, first: int, last: int) -> None:
        self.beginRemoveRows(self._index(node), first, last)
        for child in node.children[first : last + 1]:
            stack = [child]
            while stack:
                gone = stack.pop()
                stack.extend(gone.children)
                self._nodes.pop(gone.uid, None)
                if gone.item is not None and self._by_item.get(gone.item.item_id) is gone:
                    del self._by_item[gone.item.item_id]
                for item_id in gone.hints:
                    if self._hint_home.get(item_id) is gone:
                        del self._hint_home[item_id]
                if gone.task is not None:
                    gone.task.cancel()
        del node.kids()[first : last + 1]
        for row, child in enumerate(node.children[first:], start=first):
            child.row = row
        self.endRemoveRows()

    def _attach(self, entry: SelectionEntry) -> None:
        """Keep an entry for a folder not loaded on the deepest loaded folder of its path."""
        home = self._root
        for part in _split(entry.path)[:-1]:
            child = home.by_name.get(part.casefold())
            if child is None:
                break
            home = child
        home.hints[entry.item_id] = entry
        self._hint_home[entry.item_id] = home
        self._bubble(home, entry.included, not entry.included)
        if home.routes is not None:  # listing in progress: let the remaining batches route it
            segments = _split(entry.path)
            depth = len(self._parts(home))
            if len(segments) > depth + 1:
                home.routes.setdefault(segments[depth].casefold(), []).append(entry.item_id)

    def _recount(self, top: _Node) -> None:
        for node in reversed(list(top.descendants())):
            node.n_inc = sum(entry.included for entry in node.hints.values())
            node.n_exc = len(node.hints) - node.n_inc
            for child in node.children:
                if child.tickable:
                    node.n_inc += child.n_inc + child.included
                    node.n_exc += child.n_exc + (not child.included)

    def _bubble_change(self, node: _Node, before: tuple[int, int]) -> None:
        after = _marks(node)
        if node.parent is not None:
            self._bubble(node.parent, after[0] - before[0], after[1] - before[1])

    @staticmethod
    def _bubble(node: _Node | None, included: int, excluded: int) -> None:
        while node is not None:
            node.n_inc += included
            node.n_exc += excluded
            node = node.parent

    def _current_entries(self) -> list[SelectionEntry]:
        return list(self._root.hints.values()) + self._entries_below(self._root)

    def _entries_below(self, top: _Node) -> list[SelectionEntry]:
        """Minimal entries for the loaded folders under ``top`` and the hints they hold."""
        entries: list[SelectionEntry] = []
        stack = [(child, top.effective) for child in reversed(top.children) if child.tickable]
        while stack:
            node, inherited = stack.pop()
            assert node.item is not None
            if node.effective != inherited:
                entries.append(
                    SelectionEntry(
                        self._drive_id or node.item.drive_id,
                        node.item.item_id,
                        node.included,
                        urgent=node.effective[1],
                        path="/".join(self._parts(node)),
                    )
                )
            entries.extend(node.hints.values())
            stack.extend((child, node.effective) for child in reversed(node.children) if child.tickable)
        return entries

    def _parts(self, node: _Node) -> tuple[str, ...]:
        names: list[str] = []
        while node.item is not None and node.parent is not None:
            names.append(node.item.name)
            node = node.parent
        return tuple(reversed(names))

    # -- change notifications ------------------------------------------------------------------

    def _emit_ancestors(self, node: _Node) -> None:
        while node.parent is not None:
            self.dataChanged.emit(self._index(node), self._index(node, len(Column) - 1))
            node = node.parent

    def _emit_subtree(self, top: _Node) -> None:
        self._emit_ancestors(top)
        for node in top.descendants():
            if node.children:
                parent = self._index(node)
                last = len(node.children) - 1
                self.dataChanged.emit(self.index(0, 0, parent), self.index(last, len(Column) - 1, parent))

    # -- Qt model interface --------------------------------------------------------------------

    def _node(self, index: Index) -> _Node | None:
        return self._nodes.get(index.internalId()) if index.isValid() and index.model() is self else None

    def _row_node(self, index: Index) -> _Node | None:
        # The view's calls, several per row on every relayout: they only pass this model's
        # indexes, so skip the model() check (a relayout of 100,000 rows is ~400,000 calls).
        return self._nodes.get(index.internalId()) if index.isValid() else None

    def _index(self, node: _Node, column: int = 0) -> QModelIndex:
        if node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node.uid)

    def index(self, row: int, column: int, parent: Index = _NO_INDEX) -> QModelIndex:
        node = self._row_node(parent) if parent.isValid() else self._root
        if node is None or not (0 <= row < len(node.children) and 0 <= column < len(Column)):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row].uid)

    def parent(self, child: Index = _NO_INDEX) -> QModelIndex:  # type: ignore[override]
        # QObject.parent() shares the name; views only call the model's one-argument form.
        node = self._row_node(child)
        return self._index(node.parent) if node is not None and node.parent is not None else QModelIndex()

    def rowCount(self, parent: Index = _NO_INDEX) -> int:
        if parent.column() > 0:
            return 0
        node = self._row_node(parent) if parent.isValid() else self._root
        return len(node.children) if node is not None else 0

    def columnCount(self, parent: Index = _NO_INDEX) -> int:
        return len(Column)

    def hasChildren(self, parent: Index = _NO_INDEX) -> bool:
        node = self._row_node(parent) if parent.isValid() else self._root
        if node is None or node.kind is not RowKind.FOLDER or parent.column() > 0:
            return False
        if node.load is _Load.UNLOADED:
            return node.item is None or node.item.child_count != 0 or bool(node.hints)
        return bool(node.children)

    def flags(self, index: Index) -> Qt.ItemFlag:
        node = self._row_node(index)
        if node is None:
            return Qt.ItemFlag.NoItemFlags
        if node.kind is not RowKind.FOLDER:
            return _LEAF_FLAGS
        return _CHECKABLE_FLAGS if node.tickable and index.column() == Column.NAME else _ROW_FLAGS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _ROLE.DisplayRole) -> Any:
        if orientation is not Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        if role == _ROLE.DisplayRole:
            return HEADERS[section]
        if role == _ROLE.ToolTipRole:
            return _HEADER_TIPS[section]
        return None

    def setData(self, index: Index, value: Any, role: int = _ROLE.EditRole) -> bool:
        if role != _ROLE.CheckStateRole or index.column() != Column.NAME:
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        if state is Qt.CheckState.PartiallyChecked:
            return False  # partial follows from the descendants; nobody sets it directly
        return self.set_checked(index, state is Qt.CheckState.Checked)

    def data(self, index: Index, role: int = _ROLE.DisplayRole) -> Any:
        node = self._row_node(index)
        if node is None:
            return None
        column = index.column()
        if role == Role.KIND:
            return node.kind
        if node.item is None:
            return self._placeholder_data(node, column, role)
        item = node.item
        if role == _ROLE.DisplayRole:
            return self._display(node, item, column)
        if role == _ROLE.CheckStateRole:
            return node.check_state() if node.tickable and column == Column.NAME else None
        if role == _ROLE.ToolTipRole:
            path = "/".join(self._parts(node))
            if column == Column.NAME:
                return path if node.reason is None else f"{path}\n{node.reason.message}"
            return node.reason.message if node.reason is not None else None
        if role == _ROLE.ForegroundRole and node.reason is not None:
            return _greyed()
        if role == _ROLE.TextAlignmentRole and column in (Column.ITEMS, Column.SIZE):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == _ROLE.AccessibleDescriptionRole and column == Column.NAME:
            return self._describe(node)
        if role == Role.ITEM_ID:
            return item.item_id
        if role == Role.PATH:
            return "/".join(self._parts(node))
        return None

    def _display(self, node: _Node, item: RemoteItem, column: int) -> str:
        if column == Column.NAME:
            return item.name
        if column == Column.ITEMS:
            return f"{item.child_count:,}" if item.child_count is not None and item.is_folder else ""
        if column == Column.SIZE:
            return format_size(item.size) if item.size > 0 else ""  # no size reported: leave blank
        if column == Column.URGENT:
            if not (node.tickable and node.urgent and node.check_state() is not Qt.CheckState.Unchecked):
                return ""
            parent = node.parent
            inherited = parent is not None and parent.tickable and parent.urgent and parent.included
            return "⚑" if inherited else "⚑ urgent"
        if column == Column.NOTE:
            return node.reason.title if node.reason is not None else ""
        return ""

    def _describe(self, node: _Node) -> str:
        if node.reason is not None:
            return f"Not copied: {node.reason.message}"
        words = {
            Qt.CheckState.Checked: "ticked",
            Qt.CheckState.Unchecked: "not ticked",
            Qt.CheckState.PartiallyChecked: "partly ticked",
        }
        text = words[node.check_state()] if node.tickable else ""
        if node.item is not None and self._display(node, node.item, Column.URGENT):
            text += ", urgent"
        return text

    def _placeholder_data(self, node: _Node, column: int, role: int) -> Any:
        if role == _ROLE.DisplayRole and column == Column.NAME:
            return node.message if node.kind is RowKind.LOADING else f"⚠ {node.message}"
        if role == _ROLE.ToolTipRole:
            if node.kind is RowKind.ERROR:
                return f"{node.message}\nDouble-click, press Enter or choose Retry to list it again."
            return node.message
        if role == _ROLE.FontRole and column == Column.NAME:
            font = QFont()
            font.setItalic(True)
            return font
        if role == _ROLE.AccessibleDescriptionRole and node.kind is RowKind.ERROR:
            return "Listing failed; press Enter to retry"
        return None


def _greyed() -> QColor:
    """The palette's disabled text colour (follows dark mode); plain grey without a GUI app."""
    if isinstance(QCoreApplication.instance(), QGuiApplication):
        return QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    return QColor(Qt.GlobalColor.gray)


def _folder_like(item: RemoteItem) -> bool:
    return item.is_folder or item.package_type is not None


def _name_key(item: RemoteItem) -> str:
    return item.name.casefold()


def _inherited(node: _Node) -> tuple[bool, bool]:
    parent = node.parent
    if parent is None or parent.parent is None or not parent.tickable:
        return False, False
    return parent.included, parent.urgent


def _marks(node: _Node) -> tuple[int, int]:
    """(included, excluded) marks a tickable node and everything below it count upward."""
    return node.n_inc + node.included, node.n_exc + (not node.included)


def _with_urgent(entry: SelectionEntry, urgent: bool) -> SelectionEntry:
    return SelectionEntry(entry.drive_id, entry.item_id, entry.included, urgent=urgent, path=entry.path)
