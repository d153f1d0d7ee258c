"""The account, drives, selected roots, the drive-item index and delta cursors.

Items need their drive saved first (``save_drive``): the index hangs off ``drives`` by a
foreign key, so removing a drive removes its index, selection and cursors with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert

from celeste_desktop.domain.models import (
    Drive,
    DriveKind,
    RemoteChange,
    RemoteDeletion,
    RemoteItem,
    SelectionEntry,
)
from celeste_desktop.store.base import StoreBase
from celeste_desktop.store.records import DeltaCursor, DeltaMode, StoredAccount
from celeste_desktop.store.schema import delta_cursors, drives, format_utc, items, meta, selection

__all__ = ["IndexRepository", "chunked"]

# Rows per transaction for bulk writes outside a batch: big enough to be fast, small enough that
# a writer waiting behind us (the event loop, another process) waits milliseconds, not seconds.
BULK_CHUNK = 1000
# SQLite binds at most 32766 parameters; keep IN lists well below.
_IN_CHUNK = 500

_ACCOUNT_KEYS = ("account.upn", "account.tenant_id", "account.home_account_id")

_ITEM_COLUMNS = tuple(column for column in items.c if column.name != "drive_id")
_ITEM_SELECT = select(*_ITEM_COLUMNS)
_PLAN_SELECT = select(
    items.c.item_id,
    items.c.parent_id,
    items.c.name,
    items.c.is_folder,
    items.c.size,
    items.c.ctag,
    items.c.quickxor,
    items.c.package_type,
    items.c.malware,
    items.c.is_root,
)


T = TypeVar("T")


def chunked(values: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _SharedStrings:
    """One string object per distinct folder id and short repeated text while loading an index.

    SQLite hands out a new string for every cell: without this, each of 100,000 files would
    hold its own copy of its parent's id (and of its MIME type)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def text(self, value: str) -> str:
        return self._seen.setdefault(value, value)

    def ids(self, item_id: str, parent_id: str | None, is_folder: bool) -> tuple[str, str | None]:
        """The item's id (shared when it is a folder: children name it) and its parent's id."""
        if is_folder:
            item_id = self._seen.setdefault(item_id, item_id)
        if parent_id is not None:
            parent_id = self._seen.setdefault(parent_id, parent_id)
        return item_id, parent_id


def _item_tuple(drive_id: str, item: RemoteItem) -> tuple[Any, ...]:
    """The row of :data:`_UPSERT_ITEMS_SQL`, converted by hand (see there)."""
    if item.drive_id != drive_id:
        raise ValueError(f"item {item.item_id} belongs to drive {item.drive_id}, not {drive_id}")
    return (
        drive_id,
        item.item_id,
        item.parent_id,
        item.name,
        int(item.is_folder),
        item.size,
        item.etag,
        item.ctag,
        item.quickxor,
        item.mime_type,
        None if item.modified is None else format_utc(item.modified),
        item.web_url,
        item.package_type,
        int(item.malware),
        int(item.is_root),
        item.child_count,
    )


def _upsert_items_sql() -> str:
    # Compiled once from Core for positional parameters. Bulk upserts then bypass SQLAlchemy's
    # per-row parameter processing, which took two thirds of the time of a 100k-item upsert;
    # _item_tuple does the same conversions (booleans to 0/1, timestamps to UTC text).
    statement = insert(items)
    statement = statement.on_conflict_do_update(
        index_elements=[items.c.drive_id, items.c.item_id],
        set_={column.name: statement.excluded[column.name] for column in items.c if not column.primary_key},
    )
    compiled = statement.compile(dialect=sqlite_dialect())
    if list(compiled.positiontup or ()) != [column.name for column in items.c]:  # pragma: no cover
        raise RuntimeError("the items upsert's parameters are not in column order")
    return str(compiled)


_UPSERT_ITEMS_SQL = _upsert_items_sql()


class IndexRepository(StoreBase):
    # -- account -----------------------------------------------------------------------------

    def set_account(self, upn: str, tenant_id: str, home_account_id: str | None = None) -> None:
        """Remember who is signed in (identifiers only: tokens live in the vault)."""
        values = {"account.upn": upn, "account.tenant_id": tenant_id, "account.home_account_id": home_account_id}
        with self._write() as conn:
            conn.execute(delete(meta).where(meta.c.key.in_(_ACCOUNT_KEYS)))
            rows = [{"key": key, "value": value} for key, value in values.items() if value is not None]
            conn.execute(insert(meta), rows)

    def account(self) -> StoredAccount | None:
        with self._read() as conn:
            found = dict(conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.in_(_ACCOUNT_KEYS))).all())
        if "account.upn" not in found:
            return None
        return StoredAccount(
            upn=found["account.upn"],
            tenant_id=found.get("account.tenant_id", ""),
            home_account_id=found.get("account.home_account_id"),
        )

    def clear_account(self) -> None:
        with self._write() as conn:
            conn.execute(delete(meta).where(meta.c.key.in_(_ACCOUNT_KEYS)))

    def get_meta(self, key: str) -> str | None:
        """A small fact the engine remembers between runs (never a secret)."""
        if key in _ACCOUNT_KEYS:
            raise ValueError("account facts are read with account()")
        with self._read() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        if key in _ACCOUNT_KEYS:
            raise ValueError("account facts are written with set_account()")
        with self._write() as conn:
            conn.execute(delete(meta).where(meta.c.key == key))
            conn.execute(insert(meta), [{"key": key, "value": value}])

    # -- drives ------------------------------------------------------------------------------

    def save_drive(self, drive: Drive, delta_mode: DeltaMode | None = None) -> None:
        """Insert or update a drive; ``delta_mode`` None keeps the remembered mode (new: folder)."""
        row = {
            "drive_id": drive.drive_id,
            "name": drive.name,
            "kind": drive.kind.value,
            "owner": drive.owner,
            "site_id": drive.site_id,
            "web_url": drive.web_url,
            "delta_mode": (delta_mode or DeltaMode.FOLDER).value,
            "updated_at": self._now(),
        }
        statement = insert(drives).values(row)
        keep = {key: statement.excluded[key] for key in row if key not in ("drive_id", "delta_mode")}
        if delta_mode is not None:
            keep["delta_mode"] = statement.excluded.delta_mode
        with self._write() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=[drives.c.drive_id], set_=keep))

    def drives(self) -> list[Drive]:
        query = select(
            drives.c.drive_id, drives.c.name, drives.c.kind, drives.c.owner, drives.c.site_id, drives.c.web_url
        ).order_by(drives.c.name, drives.c.drive_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            Drive(drive_id=d, name=n, kind=DriveKind(k), owner=o, site_id=s, web_url=w) for d, n, k, o, s, w in rows
        ]

    def delta_mode(self, drive_id: str) -> DeltaMode:
        """How this drive is enumerated (``folder`` for a drive never saved)."""
        with self._read() as conn:
            mode = conn.execute(select(drives.c.delta_mode).where(drives.c.drive_id == drive_id)).scalar()
        return DeltaMode(mode) if mode else DeltaMode.FOLDER

    def set_delta_mode(self, drive_id: str, mode: DeltaMode) -> None:
        with self._write() as conn:
            conn.execute(
                update(drives)
                .where(drives.c.drive_id == drive_id)
                .values(delta_mode=mode.value, updated_at=self._now())
            )

    def remove_drive(self, drive_id: str) -> None:
        """Forget a drive with its index, selection and cursors (delivered files stay)."""
        with self._write() as conn:
            conn.execute(delete(drives).where(drives.c.drive_id == drive_id))

    # -- selection ---------------------------------------------------------------------------

    def set_selection(self, drive_id: str, entries: Iterable[SelectionEntry]) -> None:
        """Replace the drive's whole selection at once."""
        rows = []
        for entry in entries:
            if entry.drive_id != drive_id:
                raise ValueError(f"selection entry {entry.item_id} belongs to drive {entry.drive_id}")
            rows.append(
                {
                    "drive_id": drive_id,
                    "item_id": entry.item_id,
                    "included": entry.included,
                    "urgent": entry.urgent,
                    "path": entry.path,
                }
            )
        with self._write() as conn:
            conn.execute(delete(selection).where(selection.c.drive_id == drive_id))
            if rows:
                conn.execute(insert(selection), rows)

    def selection(self, drive_id: str | None = None) -> list[SelectionEntry]:
        """The selection of one drive, or of every drive."""
        query = select(
            selection.c.drive_id, selection.c.item_id, selection.c.included, selection.c.urgent, selection.c.path
        ).order_by(selection.c.drive_id, selection.c.path, selection.c.item_id)
        if drive_id is not None:
            query = query.where(selection.c.drive_id == drive_id)
        with self._read() as conn:
            return [SelectionEntry(*row) for row in conn.execute(query)]

    def set_urgent(self, drive_id: str, item_id: str, urgent: bool) -> bool:
        """Flag a selected folder urgent (or not); False if it is not in the selection."""
        with self._write() as conn:
            result = conn.execute(
                update(selection)
                .where(selection.c.drive_id == drive_id, selection.c.item_id == item_id)
                .values(urgent=urgent)
            )
        return bool(result.rowcount)

    # -- the drive-item index ----------------------------------------------------------------

    def upsert_items(self, drive_id: str, remote_items: Iterable[RemoteItem]) -> int:
        """Insert or update items (the last of duplicates wins); return how many were written.

        Outside a ``batch()`` this commits every few thousand rows, so it is not atomic as a
        whole (use ``save_delta_page`` for that) but never holds the write lock for long.
        """
        written = 0
        for chunk in chunked(remote_items, BULK_CHUNK):
            rows = [_item_tuple(drive_id, item) for item in chunk]
            with self._write() as conn:
                conn.exec_driver_sql(_UPSERT_ITEMS_SQL, rows)
            written += len(rows)
        return written

    def delete_items(self, drive_id: str, item_ids: Iterable[str]) -> int:
        """Remove items *and everything below them* (delta on Business may report only the
        deleted folder, not its children); return how many rows went."""
        removed = 0
        for chunk in chunked(item_ids, _IN_CHUNK):
            with self._write() as conn:
                removed += _delete_subtrees(conn, drive_id, chunk)
        return removed

    def load_items(self, drive_id: str, *, only: Iterable[str] | None = None) -> dict[str, RemoteItem]:
        """The whole index of one drive by item id (100k items in well under a second), or only
        the items whose ids are in ``only``. For planning, :meth:`load_plan_items` costs half."""
        loaded: dict[str, RemoteItem] = {}
        shared = _SharedStrings()
        with self._read() as conn:
            if only is None:
                batches: Iterable[Iterable[Any]] = [conn.execute(_ITEM_SELECT.where(items.c.drive_id == drive_id))]
            else:
                batches = (
                    conn.execute(_ITEM_SELECT.where(items.c.drive_id == drive_id, items.c.item_id.in_(chunk)))
                    for chunk in chunked(only, _IN_CHUNK)
                )
            for batch in batches:
                for row in batch:  # streamed: never every row at once
                    (item_id, parent_id, name, is_folder, size, etag, ctag, quickxor, mime_type, modified, web_url,
                     package_type, malware, is_root, child_count) = row  # fmt: skip
                    item_id, parent_id = shared.ids(item_id, parent_id, is_folder)
                    loaded[item_id] = RemoteItem(
                        drive_id, item_id, parent_id, name, is_folder, size, etag, ctag, quickxor,
                        None if mime_type is None else shared.text(mime_type), modified, web_url, package_type,
                        malware, is_root, child_count,
                    )  # fmt: skip
        return loaded

    def load_plan_items(self, drive_id: str) -> dict[str, RemoteItem]:
        """The whole index of one drive by item id, with only what the planner and enumeration
        read: ids, parent, name, folder and root flags, size, cTag, QuickXorHash, package type
        and malware. ``etag``, ``mime_type``, ``modified``, ``web_url`` and ``child_count`` are
        left empty, which halves the memory of a 100,000-item drive (~45 MB instead of ~95)."""
        loaded: dict[str, RemoteItem] = {}
        shared = _SharedStrings()
        with self._read() as conn:
            for row in conn.execute(_PLAN_SELECT.where(items.c.drive_id == drive_id)):  # streamed
                item_id, parent_id, name, is_folder, size, ctag, quickxor, package_type, malware, is_root = row
                item_id, parent_id = shared.ids(item_id, parent_id, is_folder)
                loaded[item_id] = RemoteItem(
                    drive_id, item_id, parent_id, name, is_folder, size, ctag=ctag, quickxor=quickxor,
                    package_type=package_type, malware=malware, is_root=is_root,
                )  # fmt: skip
        return loaded

    def item(self, drive_id: str, item_id: str) -> RemoteItem | None:
        with self._read() as conn:
            row = conn.execute(_ITEM_SELECT.where(items.c.drive_id == drive_id, items.c.item_id == item_id)).first()
        return None if row is None else RemoteItem(drive_id, *row)

    def children(self, drive_id: str, parent_id: str) -> list[RemoteItem]:
        """Direct children, folders first, then by name (case-insensitively)."""
        query = _ITEM_SELECT.where(items.c.drive_id == drive_id, items.c.parent_id == parent_id).order_by(
            items.c.is_folder.desc(), func.lower(items.c.name), items.c.item_id
        )
        with self._read() as conn:
            return [RemoteItem(drive_id, *row) for row in conn.execute(query)]

    def item_count(self, drive_id: str) -> int:
        with self._read() as conn:
            count = conn.execute(select(func.count()).select_from(items).where(items.c.drive_id == drive_id)).scalar()
        return int(count or 0)

    # -- delta cursors -----------------------------------------------------------------------

    def save_delta_page(
        self,
        drive_id: str,
        scope_item_id: str,
        changes: Iterable[RemoteChange],
        *,
        next_link: str | None = None,
        delta_link: str | None = None,
    ) -> None:
        """Apply one delta page and move the cursor past it, in ONE transaction.

        ``changes`` are applied in the order Graph sent them (an item may be deleted and
        restored in one page). Give ``next_link`` for a page in the middle of an enumeration,
        ``delta_link`` for the last one. After a kill the cursor names exactly the first page
        whose items are not in the index.
        """
        if (next_link is None) == (delta_link is None):
            raise ValueError("a delta page carries either a next link or a delta link")
        with self._write() as conn:
            for upserts, deletions in _runs(drive_id, changes):
                if upserts:
                    conn.exec_driver_sql(_UPSERT_ITEMS_SQL, [_item_tuple(drive_id, item) for item in upserts])
                for chunk in chunked(deletions, _IN_CHUNK):
                    _delete_subtrees(conn, drive_id, chunk)
            statement = insert(delta_cursors).values(
                drive_id=drive_id,
                scope_item_id=scope_item_id,
                next_link=next_link,
                delta_link=delta_link,
                updated_at=self._now(),
            )
            # Mid-enumeration the previous delta link is kept (harmless, and shows when the
            # scope last completed); the last page replaces it and clears the next link.
            changes_to_cursor: dict[str, Any] = {
                "next_link": statement.excluded.next_link,
                "updated_at": statement.excluded.updated_at,
            }
            if delta_link is not None:
                changes_to_cursor["delta_link"] = statement.excluded.delta_link
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[delta_cursors.c.drive_id, delta_cursors.c.scope_item_id], set_=changes_to_cursor
                )
            )

    def delta_cursor(self, drive_id: str, scope_item_id: str = "") -> DeltaCursor | None:
        query = select(delta_cursors).where(
            delta_cursors.c.drive_id == drive_id, delta_cursors.c.scope_item_id == scope_item_id
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else DeltaCursor(*row)

    def delta_cursors(self, drive_id: str) -> list[DeltaCursor]:
        query = (
            select(delta_cursors).where(delta_cursors.c.drive_id == drive_id).order_by(delta_cursors.c.scope_item_id)
        )
        with self._read() as conn:
            return [DeltaCursor(*row) for row in conn.execute(query)]

    def reset_delta(self, drive_id: str, scope_item_id: str | None = None) -> None:
        """Forget a scope's cursor (or every scope of the drive): the next run enumerates afresh."""
        query = delete(delta_cursors).where(delta_cursors.c.drive_id == drive_id)
        if scope_item_id is not None:
            query = query.where(delta_cursors.c.scope_item_id == scope_item_id)
        with self._write() as conn:
            conn.execute(query)


def _runs(drive_id: str, changes: Iterable[RemoteChange]) -> Iterator[tuple[list[RemoteItem], list[str]]]:
    """Consecutive runs of upserts or of deletions (one list of each pair is empty), in order,
    so that each run is one statement."""
    upserts: list[RemoteItem] = []
    deletions: list[str] = []
    for change in changes:
        if change.drive_id != drive_id:
            raise ValueError(f"change to {change.item_id} belongs to drive {change.drive_id}, not {drive_id}")
        if isinstance(change, RemoteDeletion):
            if upserts:
                yield upserts, []
                upserts = []
            deletions.append(change.item_id)
        else:
            if deletions:
                yield [], deletions
                deletions = []
            upserts.append(change)
    if upserts or deletions:
        yield upserts, deletions


def _delete_subtrees(conn: Connection, drive_id: str, item_ids: Sequence[str]) -> int:
    doomed = (
        select(items.c.item_id)
        .where(items.c.drive_id == drive_id, items.c.item_id.in_(item_ids))
        .cte("doomed", recursive=True)
    )
    below = items.alias("below")
    doomed = doomed.union(
        select(below.c.item_id).where(below.c.drive_id == drive_id, below.c.parent_id == doomed.c.item_id)
    )
    conn.execute(delete(items).where(items.c.drive_id == drive_id, items.c.item_id.in_(select(doomed.c.item_id))))
    # sqlite3 reports rowcount -1 for a statement that starts with WITH; SQLite itself knows.
    return int(conn.exec_driver_sql("SELECT changes()").scalar_one())
