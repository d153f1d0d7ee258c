"""The engine's view of one drive: items by id, paths rebuilt from parent ids, selection by folder.

Pure functions over ``dict[str, RemoteItem]`` (item id -> item), the index that delta keeps
up to date. Delta items carry no ``parentReference.path`` and the same item may arrive several
times, parents after children, so everything here works from ids and tolerates holes:

- :func:`apply_changes` folds one enumeration into the index (the last occurrence of an item
  wins; a deleted folder takes its whole subtree with it).
- :class:`ItemTree` answers "where is this item" and "is it selected" for many items at once,
  memoising each folder's answer so a 100,000-item drive costs one walk per folder.
- :func:`folder_path` and :func:`is_selected` are one-off conveniences over :class:`ItemTree`.

The drive root is the item with ``is_root`` set or without a parent (``RemoteItem.parent_id``
is ``None`` only for the root). Its name never appears in a path.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from celeste_desktop.domain.models import RemoteChange, RemoteDeletion, RemoteItem, SelectionEntry

__all__ = [
    "ItemTree",
    "Selected",
    "apply_changes",
    "folder_path",
    "is_selected",
]


def apply_changes(
    items: Mapping[str, RemoteItem], changes: Iterable[RemoteChange]
) -> dict[str, RemoteItem]:
    """A new index: ``items`` (not modified) with ``changes`` from one enumeration applied.

    - Changes apply in order, so the last occurrence of an item wins (a deletion followed by
      the item again means it was restored).
    - Deleting an id removes the item and, once the whole batch is in, every item whose parent
      chain leads to a deleted id: delta may report only the folder. Because this is decided at
      the end, a file moved out of a folder that is deleted in the same batch survives, and a
      child listed after its deleted parent goes with it.
    - A deletion of an unknown id changes nothing, except that orphans waiting for that id as
      their parent go too (the parent will never arrive).
    - An item whose parent is not known is kept: the parent may come later in the enumeration.
    - Moves need nothing special: children keep their parent id, paths are rebuilt on demand.
    """
    result = dict(items)
    deleted: set[str] = set()
    for change in changes:
        if isinstance(change, RemoteDeletion):
            result.pop(change.item_id, None)
            deleted.add(change.item_id)
        else:
            result[change.item_id] = change
            deleted.discard(change.item_id)
    if deleted:
        _prune_below(result, deleted)
    return result


def _prune_below(items: dict[str, RemoteItem], deleted: set[str]) -> None:
    """Remove every item whose ancestor chain reaches an id in ``deleted``. One memoised walk:
    each item is decided once, so the cost is linear in the index."""
    doomed: dict[str, bool] = {}
    for start in list(items):
        chain: list[str] = []
        on_chain: set[str] = set()
        current: str | None = start
        verdict = False
        while current is not None:
            if current in doomed:
                verdict = doomed[current]
                break
            if current in deleted:
                verdict = True
                break
            item = items.get(current)
            if item is None or current in on_chain:
                break  # an orphan or a cycle: not below a deleted folder as far as we know
            chain.append(current)
            on_chain.add(current)
            current = item.parent_id
        for item_id in chain:
            doomed[item_id] = verdict
    for item_id, gone in doomed.items():
        if gone:
            del items[item_id]


class Selected(enum.Enum):
    """Whether an item is in the selection, as far as the index can tell."""

    INCLUDED = "included"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"  # the parent chain is broken before any selection entry decided


def _is_root(item: RemoteItem) -> bool:
    return item.is_root or item.parent_id is None


class ItemTree:
    """Paths and selection for the items of one index, memoised per folder.

    Build one per planning pass (the memo assumes ``items`` and ``selection`` do not change
    while it is in use). Selection entries are matched on ``(drive_id, item_id)``, so entries
    of other drives in the same list are ignored.
    """

    def __init__(
        self, items: Mapping[str, RemoteItem], selection: Iterable[SelectionEntry] = ()
    ) -> None:
        self._items = items
        self._entries_by_id: dict[tuple[str, str], SelectionEntry] = {
            (entry.drive_id, entry.item_id): entry for entry in selection
        }
        # Per folder id: the folder's own path below the root (its name included, () for the
        # root; None when the chain is broken) and the nearest selection entry at or above it.
        self._own_paths: dict[str, tuple[str, ...] | None] = {}
        self._nearest: dict[str, SelectionEntry | None] = {}

    def folder_path(self, item_id: str) -> tuple[str, ...] | None:
        """The names of the folders from below the drive root down to the item's parent:
        ``()`` for an item at the root (and for the root itself); ``None`` when the item is
        unknown or its parent chain does not reach the root (missing parent, cycle)."""
        item = self._items.get(item_id)
        if item is None:
            return None
        if _is_root(item):
            return ()
        assert item.parent_id is not None  # _is_root covers None
        self._resolve(item.parent_id)
        return self._own_paths.get(item.parent_id)

    def nearest_entry(self, item_id: str) -> SelectionEntry | None:
        """The selection entry of the item itself or its nearest ancestor that has one."""
        item = self._items.get(item_id)
        if item is None:
            return None
        own = self._entries_by_id.get((item.drive_id, item.item_id))
        if own is not None or _is_root(item):
            return own
        assert item.parent_id is not None
        self._resolve(item.parent_id)
        return self._nearest.get(item.parent_id)

    def selection_state(self, item_id: str) -> tuple[Selected, SelectionEntry | None]:
        """Whether the item is selected and the entry that decides it (``None`` when none does).

        ``UNKNOWN`` means the parent chain breaks before any entry is met: an ancestor that
        has not been listed yet may be ticked or not."""
        entry = self.nearest_entry(item_id)
        if entry is not None:
            return (Selected.INCLUDED if entry.included else Selected.EXCLUDED), entry
        if self.folder_path(item_id) is None:
            return Selected.UNKNOWN, None
        return Selected.EXCLUDED, None

    def selected_entry(self, item_id: str) -> SelectionEntry | None:
        """The including entry when the item is selected, else ``None``."""
        entry = self.nearest_entry(item_id)
        return entry if entry is not None and entry.included else None

    def _resolve(self, folder_id: str) -> None:
        """Fill the memo for ``folder_id`` and every ancestor up to one already known.

        Iterative (deep trees do not hit the recursion limit) and cycle-safe: a chain that
        meets itself, or an id not in the index, resolves to no path."""
        if folder_id in self._own_paths:
            return
        chain: list[RemoteItem] = []
        on_chain: set[str] = set()
        base_path: tuple[str, ...] | None = None
        base_entry: SelectionEntry | None = None
        current: str | None = folder_id
        while current is not None:
            if current in self._own_paths:
                base_path = self._own_paths[current]
                base_entry = self._nearest[current]
                break
            item = self._items.get(current)
            if item is None or current in on_chain:
                break  # broken chain: no path, no inherited entry
            chain.append(item)
            on_chain.add(current)
            if _is_root(item):
                base_path = ()  # the root's name is not part of any path
                break
            current = item.parent_id
        for item in reversed(chain):
            # A broken chain stays broken; the root adds no name.
            path = base_path if base_path is None or _is_root(item) else (*base_path, item.name)
            entry = self._entries_by_id.get((item.drive_id, item.item_id), base_entry)
            self._own_paths[item.item_id] = path
            self._nearest[item.item_id] = entry
            base_path, base_entry = path, entry


def folder_path(items: Mapping[str, RemoteItem], item_id: str) -> tuple[str, ...] | None:
    """See :meth:`ItemTree.folder_path`. For many items, build one :class:`ItemTree`."""
    return ItemTree(items).folder_path(item_id)


def is_selected(
    items: Mapping[str, RemoteItem], item_id: str, selection: Iterable[SelectionEntry]
) -> SelectionEntry | None:
    """The including entry that selects ``item_id`` (its ``urgent`` flag applies), or ``None``.

    The nearest ancestor-or-self with an entry decides: a folder created later under a ticked
    folder is included, an unticked child of a ticked parent stays excluded, and an entry for
    the drive root selects everything. For many items, build one :class:`ItemTree`."""
    return ItemTree(items, selection).selected_entry(item_id)
