"""The sync planner: what to upload, move, register, delete or skip for one drive. Pure.

:func:`plan_sync` compares the index of a drive (``engine.index``), the officer's selection and
what is already delivered, and returns a :class:`~celeste_desktop.domain.models.Plan`. It does
no I/O and keeps no state, so the same inputs always give the same plan, and a dry run is the
plan itself.

Reason codes (``PlannedAction.reason_code``):

- UPLOAD ``new``, ``content_changed``
- RELOCATE ``moved`` (renamed or moved, same content), ``staging`` (see below)
- REGISTER ``unregistered``
- DELETE ``deleted_upstream``, ``unselected``, or the :class:`SkipCode` that now applies
- SKIP a :class:`SkipCode` value, ``unresolved_path`` (parent folder not listed yet), or
  ``key_busy`` (another delivered file still holds the storage key)

Order: the plan is safe to run one action after another. An action that writes a storage key
still held by another delivered file comes after the action that frees it (that file's
DELETE, RELOCATE or re-UPLOAD elsewhere); when renames form a cycle (two files swap names) one
file is first moved to a staging key (``reason_code="staging"``) so no bytes are sent again.
Otherwise urgent actions come first, then the cheap ones (DELETE, RELOCATE, REGISTER, SKIP),
then UPLOADs smallest first, ties by path. An executor running several lanes must still keep
the pairs :func:`dependencies` returns in order.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import replace

from celeste_desktop.domain.models import (
    ActionKind,
    DeliveredFile,
    Plan,
    PlannedAction,
    RemoteItem,
    SelectionEntry,
)
from celeste_desktop.domain.rules import SkipPatterns, skip_reason
from celeste_desktop.engine.index import ItemTree, Selected
from celeste_desktop.storage.keys import MAX_KEY_LENGTH, encode_segment, storage_key

__all__ = [
    "content_changed",
    "dependencies",
    "plan_sync",
    "staging_key",
]

NEW = "new"
CONTENT_CHANGED = "content_changed"
MOVED = "moved"
STAGING = "staging"
UNREGISTERED = "unregistered"
DELETED_UPSTREAM = "deleted_upstream"
UNSELECTED = "unselected"
UNRESOLVED_PATH = "unresolved_path"
KEY_BUSY = "key_busy"

# The folder segment of staging keys. A kept key segment never holds "*" and a rewritten one
# holds it only as " (*xxxxxxxx)" after a space, so no real file can map to this folder.
_STAGING_SEGMENT = "(*staging)"

_KIND_RANK = {
    ActionKind.DELETE: 0,
    ActionKind.RELOCATE: 1,
    ActionKind.REGISTER: 2,
    ActionKind.SKIP: 3,
    ActionKind.UPLOAD: 0,
}


def plan_sync(
    *,
    yacht_id: str,
    items: Mapping[str, RemoteItem],
    selection: Sequence[SelectionEntry],
    delivered: Mapping[str, DeliveredFile],
    patterns: SkipPatterns | None = None,
    max_file_size: int | None = None,
) -> Plan:
    """The actions that bring storage in line with the selected files of one drive.

    ``items`` is the drive's index (item id -> item), ``delivered`` what is in storage (item
    id -> record; records marked ``deleted`` count as not delivered). ``max_file_size``, when
    given, replaces ``patterns.max_file_bytes``. Raises ``ConfigError`` for an invalid
    ``yacht_id`` (from :func:`storage_key`).

    Per selected file: never delivered -> UPLOAD ``new``; content changed (see
    :func:`content_changed`) -> UPLOAD ``content_changed``, with ``previous_key`` when the key
    changed as well; same content under a new key -> RELOCATE; same key but not registered ->
    REGISTER. A file the skip rules reject -> SKIP, or DELETE when it was delivered. Delivered
    files gone from the index or no longer selected -> DELETE. A file whose folders cannot be
    resolved yet is neither uploaded nor deleted: SKIP ``unresolved_path``.
    """
    patterns = patterns or SkipPatterns()
    if max_file_size is not None:
        patterns = replace(patterns, max_file_bytes=max_file_size)
    tree = ItemTree(items, selection)
    keys = _KeyMaker(yacht_id)
    actions: list[PlannedAction] = []
    in_package = _PackageAncestry(items)
    for listed in items.values():
        if listed.is_folder or listed.is_root:
            continue
        package = in_package(listed.parent_id)
        # A file inside a OneNote notebook (a package) is part of the notebook, not a document
        # of its own: it is skipped with the notebook's reason.
        item = listed if package is None else replace(listed, package_type=package)
        action = _plan_file(keys, item, tree, delivered.get(item.item_id), patterns)
        if action is not None:
            actions.append(action)
    for item_id, record in delivered.items():
        present = items.get(item_id)
        if record.deleted or (present is not None and not present.is_folder):
            continue
        actions.append(
            _from_record(
                record, ActionKind.DELETE, "deleted or moved out of the drive", DELETED_UPSTREAM
            )
        )
    return Plan(_order(yacht_id, actions, delivered))


def content_changed(item: RemoteItem, record: DeliveredFile) -> bool:
    """Whether ``item`` has other content than what ``record`` delivered.

    The cTag decides when both sides have one (it tracks content only: a rename changes the
    eTag, never the cTag, so the eTag is never used). Delta items on OneDrive for Business lack
    the cTag, so then the QuickXorHash decides when both sides have one. Otherwise only the size
    is left: a different size is a change, an equal size is taken as no change. That last case
    is the weakest (an edit that keeps the size is missed until a cTag or hash is seen again).

    ``record.ctag``/``record.quickxor`` must be the values the *listing* gave when the file was
    planned (``PlannedAction.ctag``/``quickxor``), not those of the downloaded bytes: SharePoint
    may alter Office files on download, and recording those would re-upload them every round.
    """
    if item.ctag and record.ctag:
        return item.ctag != record.ctag
    if item.quickxor and record.quickxor:
        return item.quickxor != record.quickxor
    return item.size != record.size


def staging_key(yacht_id: str, item_id: str) -> str:
    """Where a file waits while files exchange storage keys; never the key of a real file."""
    return "/".join((yacht_id, _STAGING_SEGMENT, encode_segment(item_id)))


def dependencies(plan: Plan) -> dict[int, int]:
    """Index of each action that must wait -> index of the earlier action it waits for.

    An UPLOAD or RELOCATE writing a key waits for the earlier action that frees that key (a
    RELOCATE or UPLOAD whose ``previous_key`` it is, or a DELETE of that key). Lanes that run
    actions in parallel must keep these pairs in order; the plan's own order already does."""
    freed_by: dict[str, int] = {}
    waits: dict[int, int] = {}
    for index, action in enumerate(plan.actions):
        if action.kind in (ActionKind.UPLOAD, ActionKind.RELOCATE):
            if action.storage_key in freed_by:
                waits[index] = freed_by.pop(action.storage_key)
            if action.previous_key is not None and action.previous_key != action.storage_key:
                freed_by[action.previous_key] = index
        elif action.kind is ActionKind.DELETE:
            freed_by[action.storage_key] = index
    return waits


class _KeyMaker:
    """:func:`storage_key`, with each folder's encoded prefix computed once per plan.

    Encoding every segment of every file's path again costs seconds on 100,000 files. The
    shortcut relies on what ``storage_key`` documents: a key within ``MAX_KEY_LENGTH`` is the
    encoded segments joined by ``/``; longer ones go to ``storage_key`` itself.
    tests/engine/test_planner.py checks the two agree."""

    def __init__(self, yacht_id: str) -> None:
        storage_key(yacht_id, (), "probe")  # raises ConfigError for an invalid yacht id, once
        self._yacht_id = yacht_id
        self._prefixes: dict[str | None, str] = {}

    def __call__(self, parent_id: str | None, folders: tuple[str, ...], name: str) -> str:
        prefix = self._prefixes.get(parent_id)
        if prefix is None:
            prefix = "/".join((self._yacht_id, *(encode_segment(part) for part in folders)))
            self._prefixes[parent_id] = prefix
        key = f"{prefix}/{encode_segment(name)}"
        if len(key) > MAX_KEY_LENGTH:
            return storage_key(self._yacht_id, folders, name)
        return key


class _PackageAncestry:
    """Which folders lie inside a package (a OneNote notebook); memoised per folder."""

    def __init__(self, items: Mapping[str, RemoteItem]) -> None:
        self._items = items
        self._known: dict[str, str | None] = {}

    def __call__(self, folder_id: str | None) -> str | None:
        chain: list[str] = []
        found: str | None = None
        current = folder_id
        while current is not None and current not in self._known and len(chain) < 10_000:
            item = self._items.get(current)
            if item is None:
                break
            chain.append(current)
            if item.package_type is not None:
                found = item.package_type
                break
            current = item.parent_id
        else:
            if current is not None and current in self._known:
                found = self._known[current]
        for folder in chain:
            self._known[folder] = found
        return found


def _plan_file(
    keys: _KeyMaker,
    item: RemoteItem,
    tree: ItemTree,
    record: DeliveredFile | None,
    patterns: SkipPatterns,
) -> PlannedAction | None:
    live = record is not None and not record.deleted
    folders = tree.folder_path(item.item_id)
    if folders is None:
        state, entry = tree.selection_state(item.item_id)
        if live or state is not Selected.EXCLUDED:
            urgent = entry is not None and entry.included and entry.urgent
            return _from_item(
                item,
                (),
                ActionKind.SKIP,
                "waiting for the parent folder to be listed",
                UNRESOLVED_PATH,
                urgent=urgent,
                storage_key=record.storage_key if record is not None else "",
            )
        return None
    entry = tree.selected_entry(item.item_id)
    if entry is None:
        if live:
            assert record is not None
            return _from_item(
                item, folders, ActionKind.DELETE, "no longer in the selected folders",
                UNSELECTED, storage_key=record.storage_key,
            )  # fmt: skip
        return None
    skip = skip_reason(folders, item.name, item.size, _facets(item), patterns)
    if skip is not None:
        if live:
            assert record is not None
            return _from_item(
                item, folders, ActionKind.DELETE, skip.message, skip.code.value,
                urgent=entry.urgent, storage_key=record.storage_key,
            )  # fmt: skip
        return _from_item(
            item, folders, ActionKind.SKIP, skip.message, skip.code.value, urgent=entry.urgent
        )
    key = keys(item.parent_id, folders, item.name)
    if not live:
        return _from_item(
            item, folders, ActionKind.UPLOAD, "new", NEW, urgent=entry.urgent, storage_key=key
        )
    assert record is not None
    previous = record.storage_key if record.storage_key != key else None
    if content_changed(item, record):
        return _from_item(
            item, folders, ActionKind.UPLOAD, "content changed", CONTENT_CHANGED,
            urgent=entry.urgent, storage_key=key, previous_key=previous,
        )  # fmt: skip
    if previous is not None:
        return _from_item(
            item, folders, ActionKind.RELOCATE, "renamed or moved", MOVED,
            urgent=entry.urgent, storage_key=key, previous_key=previous,
        )  # fmt: skip
    if not record.registered:
        return _from_item(
            item, folders, ActionKind.REGISTER, "in storage but not registered", UNREGISTERED,
            urgent=entry.urgent, storage_key=key,
        )  # fmt: skip
    return None


def _facets(item: RemoteItem) -> dict[str, object]:
    facets: dict[str, object] = {}
    if item.malware:
        facets["malware"] = {}
    if item.package_type is not None:
        facets["package"] = {"type": item.package_type}
    return facets


def _from_item(
    item: RemoteItem,
    folders: tuple[str, ...],
    kind: ActionKind,
    reason: str,
    reason_code: str,
    *,
    urgent: bool = False,
    storage_key: str = "",
    previous_key: str | None = None,
) -> PlannedAction:
    return PlannedAction(
        kind=kind,
        drive_id=item.drive_id,
        item_id=item.item_id,
        folder_path=folders,
        name=item.name,
        size=item.size,
        storage_key=storage_key,
        previous_key=previous_key,
        reason=reason,
        reason_code=reason_code,
        urgent=urgent,
        ctag=item.ctag,
        quickxor=item.quickxor,
    )


def _from_record(
    record: DeliveredFile, kind: ActionKind, reason: str, reason_code: str
) -> PlannedAction:
    return PlannedAction(
        kind=kind,
        drive_id=record.drive_id,
        item_id=record.item_id,
        folder_path=record.folder_path,
        name=record.name,
        size=record.size,
        storage_key=record.storage_key,
        reason=reason,
        reason_code=reason_code,
        ctag=record.ctag,
        quickxor=record.quickxor,
    )


# ---------------------------------------------------------------------------------------------
# Ordering: keys freed before they are written, cycles staged, then priority.


def _writes(action: PlannedAction) -> str | None:
    if action.kind in (ActionKind.UPLOAD, ActionKind.RELOCATE):
        return action.storage_key
    return None


def _frees(action: PlannedAction) -> str | None:
    if action.kind is ActionKind.DELETE:
        return action.storage_key
    if action.kind in (ActionKind.UPLOAD, ActionKind.RELOCATE) and action.previous_key:
        return action.previous_key
    return None


def _busy(action: PlannedAction) -> PlannedAction:
    return replace(
        action,
        kind=ActionKind.SKIP,
        reason="another delivered file still holds this storage name; "
        "it is copied once that file has moved or been removed",
        reason_code=KEY_BUSY,
        previous_key=None,
    )


def _resolve_conflicts(
    actions: list[PlannedAction], delivered: Mapping[str, DeliveredFile]
) -> dict[int, int]:
    """Turn writes that cannot happen into ``key_busy`` skips (in place) and return, for each
    write into a key another file still holds, the index of the action freeing it.

    With one writer and one live holder per key, and each action freeing at most one key, the
    waits form simple chains and cycles."""
    holders: dict[str, str] = {
        record.storage_key: item_id for item_id, record in delivered.items() if not record.deleted
    }
    while True:
        writer_of: dict[str, int] = {}
        changed = False
        for index, action in enumerate(actions):
            key = _writes(action)
            if key is None:
                continue
            rival = writer_of.get(key)
            if rival is None:
                writer_of[key] = index
                continue
            # Two files want one key (only a hash collision does this): the file already
            # holding it keeps it, otherwise the first by path.
            loser = index
            if _writer_rank(action, holders) < _writer_rank(actions[rival], holders):
                writer_of[key], loser = index, rival
            actions[loser] = _busy(actions[loser])
            changed = True
        freer_of = {
            key: index for index, action in enumerate(actions) if (key := _frees(action)) is not None
        }
        waits: dict[int, int] = {}
        for key, index in writer_of.items():
            holder = holders.get(key)
            if holder is None or holder == actions[index].item_id:
                continue
            freer = freer_of.get(key)
            if freer is not None and actions[freer].item_id == holder:
                waits[index] = freer
            else:  # held by a file that stays (unresolved, or the same final key)
                actions[index] = _busy(actions[index])
                changed = True
        if not changed:
            return waits


def _writer_rank(action: PlannedAction, holders: Mapping[str, str]) -> tuple[bool, str, str]:
    key = _writes(action) or ""
    return (holders.get(key) != action.item_id, action.display_path, action.item_id)


def _priority(action: PlannedAction) -> tuple[bool, int, int, int, str, str]:
    upload = action.kind is ActionKind.UPLOAD
    return (
        not action.urgent,
        1 if upload else 0,
        _KIND_RANK[action.kind],
        action.size if upload else 0,
        action.display_path,
        action.item_id,
    )


def _order(
    yacht_id: str, actions: list[PlannedAction], delivered: Mapping[str, DeliveredFile]
) -> tuple[PlannedAction, ...]:
    waits = _resolve_conflicts(actions, delivered)
    nodes = list(actions)
    after: dict[int, int] = dict(waits)  # node -> the node it waits for
    # Break each cycle of waits by staging its first member (by item id) on a free key.
    visited: set[int] = set()
    for start in sorted(after):
        if start in visited:
            continue
        path: list[int] = []
        on_path: set[int] = set()
        current: int | None = start
        while current is not None and current not in visited:
            visited.add(current)
            path.append(current)
            on_path.add(current)
            current = after.get(current)
        if current is None or current not in on_path:
            continue
        cycle = path[path.index(current) :]
        chosen = min(cycle, key=lambda i: nodes[i].item_id)
        original = nodes[chosen]
        parked = staging_key(yacht_id, original.item_id)
        stage = replace(
            original,
            kind=ActionKind.RELOCATE,
            storage_key=parked,
            reason="moved aside while files exchange names",
            reason_code=STAGING,
        )
        nodes[chosen] = replace(original, previous_key=parked)
        nodes.append(stage)
        stage_index = len(nodes) - 1
        for waiter, freer in list(after.items()):
            if freer == chosen:  # the key `chosen` used to free is now freed by the stage
                after[waiter] = stage_index
    # The waits now form chains. Promote each freer to the best priority of what waits on it,
    # then emit in priority order, a waiter only once its freer is out.
    if not after:  # the usual case: nothing waits, a plain sort will do
        return tuple(sorted(nodes, key=_priority))
    successor = {freer: waiter for waiter, freer in after.items()}
    effective: dict[int, tuple[bool, int, int, int, str, str]] = {}
    for head in (index for index in range(len(nodes)) if index not in after):
        chain = [head]
        while chain[-1] in successor:
            chain.append(successor[chain[-1]])
        best = _priority(nodes[chain[-1]])
        for index in reversed(chain):
            best = min(best, _priority(nodes[index]))
            effective[index] = best
    ready = [(effective[index], index) for index in range(len(nodes)) if index not in after]
    heapq.heapify(ready)
    ordered: list[PlannedAction] = []
    while ready:
        _, index = heapq.heappop(ready)
        ordered.append(nodes[index])
        next_index = successor.get(index)
        if next_index is not None:
            heapq.heappush(ready, (effective[next_index], next_index))
    return tuple(ordered)
