"""Incremental listing through Graph delta, scoped as tightly as the service allows.

One delta per selected folder (``/drives/{d}/items/{folder}/delta``): a 30 TB drive with one
ticked folder is never scanned whole when it need not be. Where the service refuses folder
delta (501 ``notSupported``: older tenants, some libraries) the enumerator falls back to ONE
root delta filtered to the selection and says so (``DeltaResult.mode``); the caller remembers
the mode per drive and calls with ``mode=DeltaMode.ROOT`` from then on.

Decisions worth knowing:

- **Progress is saved page by page.** ``save_page`` gets each page's changes with the link to
  resume from (the store writes both atomically), so a kill mid-enumeration resumes from the
  last saved page. The last page carries the ``deltaLink`` for the next run.
- **Ancestors.** The engine rebuilds paths from parent ids, so it needs every folder from the
  drive root down to each selected folder, which a folder delta does not send. The first
  page of a run therefore carries the selected folder and its ancestors, fetched by id (one
  small request per level, repeated only when the folder's parent path changed since this
  enumerator last looked, so a renamed ancestor is noticed). ``deltaExcludeParent`` is sent
  only on *incremental* folder-delta runs: by then every folder in scope is in the index, and
  leaving out the ancestor chain of each change saves bytes on the satellite link. It is never
  sent on a first enumeration, nor in root mode (there the ancestors decide whether a change is
  inside the selection).
- **410 Gone** (``resyncChangesApplyDifferences`` / ``…UploadDifferences``): a full
  enumeration from ``Location`` that *reconciles*: items the caller knew (``known_ids``) but
  the enumeration did not mention are reported as deletions in the last page. Nothing is
  re-uploaded blindly: the planner compares cTag/hash. Links saved during a resync carry a
  ``#celeste-resync`` fragment (never sent to the server); resuming from one restarts the resync,
  because the set of ids seen before the kill is gone and reconciling without it would delete
  what was merely not yet seen.
- **Order is kept.** The same item may come twice in one enumeration; the last wins in the
  engine's index, so pages are delivered in Graph's order.
- **Root mode filtering** keeps items whose parent chain reaches a selected folder, drops the
  rest (reported as deletions when they may have moved out of the selection), and keeps an
  item whose chain cannot be decided yet (a child sent before its parent): the engine's
  selection check is the authority; this filter only spares the index the rest of the drive.
  A root delta reports a folder moved INTO the selection but not what it holds, so such a
  folder is listed (children, recursively) into the same page.
- The ``Location`` of a 410 is followed as sent, with this enumerator's ``$top``/``$select``
  appended when it has none (a full listing over the satellite link should stay lean).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import httpx

from celeste_desktop.domain.errors import MalformedResponse, NotFound, RemoteError, ServiceUnavailable
from celeste_desktop.domain.models import DeltaMode, RemoteChange, RemoteDeletion, RemoteItem
from celeste_desktop.graph.client import SERVICE, GraphClient, segment
from celeste_desktop.graph.wire import ITEM_SELECT, parse_item, parse_item_page
from celeste_desktop.net.policy import Action, Verdict, default_classifier

__all__ = ["RESYNC_MARK", "DeltaCursorLike", "DeltaEnumerator", "DeltaMode", "DeltaPage", "DeltaResult", "SavePage"]

log = logging.getLogger(__name__)

RESYNC_MARK = "#celeste-resync"
_T = TypeVar("_T")
_MAX_RESYNCS = 2
_MAX_DEPTH = 256


class DeltaCursorLike(Protocol):
    """Where a scope's enumeration stands (``store.DeltaCursor`` fits)."""

    @property
    def next_link(self) -> str | None: ...

    @property
    def delta_link(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One page to persist: its changes, in order, and the link to resume from.

    Exactly one of ``next_link`` (mid-enumeration) and ``delta_link`` (last page) is set.
    Store them as given: they are opaque (a resync link carries a marker fragment).
    """

    drive_id: str
    scope_item_id: str  # "" for a root delta
    changes: tuple[RemoteChange, ...]
    next_link: str | None = None
    delta_link: str | None = None


SavePage = Callable[[DeltaPage], Awaitable[None] | None]
KnownIds = Callable[[], Awaitable[Collection[str]] | Collection[str]]


@dataclass(frozen=True, slots=True)
class DeltaResult:
    drive_id: str
    scope_item_id: str  # the key pages were saved under: the folder, or "" for a root delta
    mode: DeltaMode
    delta_link: str
    pages: int
    changes: int  # items and deletions delivered (anchors and reconcile deletions included)
    skipped_items: int  # entries Graph sent that could not be placed (no id…)
    filtered_out: int  # root mode: items outside the selection that were not delivered
    resynced: bool
    reconciled_deletions: int
    fell_back: bool  # folder delta was refused and a root delta was used instead


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
    if task is not None:
        await asyncio.gather(task, return_exceptions=True)


class _FolderDeltaRefused(Exception):
    pass


def _delta_classifier(response: httpx.Response) -> Verdict:
    """410 (resync) and 501 (no folder delta) are answers the enumerator acts on itself."""
    if response.status_code in (410, 501):
        return Verdict(Action.RETURN, status=response.status_code)
    return default_classifier(response)


async def _maybe_await(value: Awaitable[_T] | _T) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass
class _Anchors:
    items: list[RemoteItem]  # to deliver in the first page
    ancestor_ids: set[str]  # every folder above a scope (root included), scopes excluded


class _ScopeFilter:
    """Decides, for a root delta, whether an item lies inside one of the selected folders."""

    def __init__(self, scopes: frozenset[str], outside: set[str], known_folders: Mapping[str, str | None]) -> None:
        self._scopes = scopes
        self._anchors = set(outside)
        self._inside: set[str] = set(scopes)
        self._outside: set[str] = set(outside) - scopes
        self._known = known_folders

    def _placed(self, folder_id: str | None) -> bool | None:
        current = folder_id
        for _ in range(_MAX_DEPTH):
            if current is None:
                return None
            if current in self._inside:
                return True
            if current in self._outside:
                return False
            if current not in self._known:
                return None
            current = self._known[current]
        return None

    def mark_inside(self, folder_id: str) -> None:
        self._inside.add(folder_id)
        self._outside.discard(folder_id)

    def apply(
        self, changes: Iterable[RemoteChange], report_out: Callable[[str], bool]
    ) -> tuple[list[RemoteChange], int, list[RemoteItem]]:
        """(changes to deliver, how many were dropped, folders placed inside the selection)."""
        kept: list[RemoteChange] = []
        inside_folders: list[RemoteItem] = []
        dropped = 0
        for change in changes:
            if (
                isinstance(change, RemoteDeletion)
                or change.is_root
                or change.item_id in self._scopes
                or change.item_id in self._anchors
            ):
                kept.append(change)  # the root and the scopes' ancestors build paths
                continue
            verdict = self._placed(change.parent_id)
            if verdict is None:
                kept.append(change)  # a child before its parent: let the engine's index decide
            elif verdict:
                if change.is_folder:
                    self.mark_inside(change.item_id)
                    inside_folders.append(change)
                kept.append(change)
            else:
                if change.is_folder:
                    self._outside.add(change.item_id)
                    self._inside.discard(change.item_id)
                dropped += 1
                if report_out(change.item_id):  # it may have moved out of the selection
                    kept.append(RemoteDeletion(change.drive_id, change.item_id))
        return kept, dropped, inside_folders


class DeltaEnumerator:
    """Runs delta enumerations for the engine; keep one per account (it remembers ancestor paths)."""

    def __init__(
        self, client: GraphClient, *, page_size: int = 1000, exclude_parents_when_incremental: bool = True
    ) -> None:
        self._client = client
        self._page_size = min(1000, max(1, page_size))
        self._exclude_parents = exclude_parents_when_incremental
        # (drive, scope) -> (parentReference.path last walked, the ancestors found then)
        self._ancestry: dict[tuple[str, str], tuple[str, tuple[RemoteItem, ...]]] = {}

    async def enumerate(
        self,
        drive_id: str,
        scope_item_id: str | None,
        *,
        cursor: DeltaCursorLike | None,
        save_page: SavePage,
        mode: DeltaMode = DeltaMode.FOLDER,
        selection: Collection[str] = (),
        known_ids: KnownIds | None = None,
        known_folders: Mapping[str, str | None] | None = None,
        check_anchors: bool = True,
    ) -> DeltaResult:
        """Enumerate one scope to its end, saving each page; returns the new deltaLink.

        - ``scope_item_id`` with ``mode=FOLDER``: a folder delta on it; on 501 a root delta
          filtered to ``selection`` plus the folder (pass all the drive's selected folders, so
          one root scan serves them all), from scratch; ``cursor`` is the folder's.
        - ``scope_item_id`` None, or ``mode=ROOT``: a root delta filtered to ``selection``
          plus the folder (no filter when both are empty: the whole drive); ``cursor`` is the
          root one (scope key ``""``).
        - ``known_ids``: ids the caller's index holds within THIS scope (the folder's subtree;
          in root mode, the selection's): after a 410 every one of them the full listing does
          not mention is reported deleted, so ids of another selected folder must not be in
          it. In root mode it also tells which changes left or entered the selection. Without
          it a resync cannot report deletions.
        - ``known_folders``: folder id -> parent id from the caller's index, so root-mode
          filtering can place changes whose ancestors are not in this enumeration.
        - ``check_anchors=False`` on an incremental run skips re-reading the selected folders
          and their ancestors (one GET per folder). The caller re-checks now and then, to catch
          a renamed ancestor (which folder delta does not report) without paying a request per
          folder on every run over the satellite link.
        """
        folders = frozenset({*selection, *([scope_item_id] if scope_item_id else [])})
        if scope_item_id is None or mode is DeltaMode.ROOT:
            return await self._run(
                drive_id, DeltaMode.ROOT, folders, cursor, save_page, known_ids, known_folders, check_anchors
            )
        try:
            return await self._run(
                drive_id,
                DeltaMode.FOLDER,
                frozenset({scope_item_id}),
                cursor,
                save_page,
                known_ids,
                known_folders,
                check_anchors,
            )
        except _FolderDeltaRefused:
            log.info("folder delta refused on drive %s: falling back to a filtered root delta", drive_id)
        result = await self._run(drive_id, DeltaMode.ROOT, folders, None, save_page, known_ids, known_folders)
        return replace(result, fell_back=True)

    # -- one run -------------------------------------------------------------------------------

    def _query(self) -> str:
        return urllib.parse.urlencode({"$top": str(self._page_size), "$select": ITEM_SELECT}, safe="$,@.")

    def _fresh_url(self, drive_id: str, mode: DeltaMode, scopes: frozenset[str]) -> str:
        if mode is DeltaMode.FOLDER:
            (scope,) = scopes
            return self._client.item_url(drive_id, scope, "/delta") + "?" + self._query()
        return self._client.url(f"/drives/{segment(drive_id)}/root/delta") + "?" + self._query()

    def _resync_url(self, response: httpx.Response, fresh: str) -> str:
        """The 410's ``Location`` (kept as sent) with our page size and fields, or a fresh start."""
        location = response.headers.get("location")
        if not location:
            return fresh
        url = str(response.url.join(location))
        if "$select" in url or "%24select" in url:
            return url
        return url + ("&" if "?" in url else "?") + self._query()

    async def _run(
        self,
        drive_id: str,
        mode: DeltaMode,
        scopes: frozenset[str],
        cursor: DeltaCursorLike | None,
        save_page: SavePage,
        known_ids: KnownIds | None,
        known_folders: Mapping[str, str | None] | None,
        check_anchors: bool = True,
    ) -> DeltaResult:
        scope_key = next(iter(scopes)) if mode is DeltaMode.FOLDER else ""
        fresh = self._fresh_url(drive_id, mode, scopes)
        url, resync = fresh, False
        if cursor is not None and cursor.next_link and cursor.next_link.endswith(RESYNC_MARK):
            resync = True  # an interrupted resync starts over (see the module docstring)
        elif cursor is not None and (cursor.next_link or cursor.delta_link):
            url = cursor.next_link or cursor.delta_link or fresh
        # Changes since a completed enumeration (possibly resumed mid-way), not a full listing.
        incremental = not resync and cursor is not None and bool(cursor.delta_link)

        anchors = _Anchors([], set())
        reading_anchors: asyncio.Task[_Anchors] | None = None
        if (check_anchors or not incremental) and mode is DeltaMode.FOLDER:
            # The selected folder and its ancestors are read while the first page is asked for:
            # on a satellite link their round trips overlap the delta's.
            reading_anchors = asyncio.ensure_future(
                self._anchors(drive_id, sorted(scopes), mode=mode, force=not incremental)
            )
        elif check_anchors or not incremental:
            anchors = await self._anchors(drive_id, sorted(scopes), mode=mode, force=not incremental)
        known: set[str] | None = None
        if known_ids is not None and mode is DeltaMode.ROOT and scopes:
            known = set(await _maybe_await(known_ids()))
        scope_filter = (
            _ScopeFilter(scopes, anchors.ancestor_ids, known_folders or {})
            if mode is DeltaMode.ROOT and scopes
            else None
        )
        seen: set[str] = set()
        pending_anchors: list[RemoteChange] = list(anchors.items)
        pages = delivered = skipped = filtered = reconciled = resyncs = 0
        previous_url: str | None = None

        def report_out(item_id: str) -> bool:
            if resync:
                return False  # the reconcile at the end reports what left the selection
            return item_id in known if known is not None else incremental

        try:
            while True:
                exclude = mode is DeltaMode.FOLDER and incremental and self._exclude_parents
                headers = {"deltaExcludeParent": "true"} if exclude else None
                what = "listing changes in OneDrive"
                try:
                    response, data = await self._client.fetch_json(
                        url, what=what, headers=headers, classify=_delta_classifier
                    )
                except NotFound:
                    if reading_anchors is not None:
                        await reading_anchors  # a vanished selected folder says so in plain words
                    raise
                if response.status_code == 410:
                    resyncs += 1
                    if resyncs > _MAX_RESYNCS:
                        raise ServiceUnavailable(
                            f"{SERVICE} kept asking for a fresh listing of the same folder. The copy "
                            "will try again later; if it keeps happening, export diagnostics.",
                            status=410,
                            service=SERVICE,
                        )
                    log.info("delta token expired on drive %s (410): reconciling with a full enumeration", drive_id)
                    url = self._resync_url(response, fresh)
                    resync, incremental, previous_url = True, False, None
                    seen.clear()
                    # The full listing re-delivers every ancestor, so the reconcile never drops one.
                    await _cancel(reading_anchors)
                    reading_anchors = None
                    anchors = await self._anchors(drive_id, sorted(scopes), mode=mode, force=True)
                    pending_anchors = list(anchors.items)
                    continue
                if response.status_code == 501:
                    if mode is DeltaMode.FOLDER:
                        raise _FolderDeltaRefused
                    raise RemoteError(
                        f"{SERVICE} does not support listing changes in this drive (501 notSupported).",
                        status=501,
                        code="notSupported",
                        service=SERVICE,
                    )
                if data is None:
                    raise MalformedResponse(
                        f"{SERVICE} answered {response.status_code} while {what}.",
                        status=response.status_code,
                        service=SERVICE,
                    )
                page = parse_item_page(data, drive_id=drive_id, service=SERVICE, what=what)
                skipped += page.skipped
                self._client.skipped_items += page.skipped
                changes: list[RemoteChange] = list(page.changes)
                if scope_filter is not None:
                    changes, dropped, entered = scope_filter.apply(changes, report_out)
                    filtered += dropped
                    if incremental:
                        changes = await self._with_moved_in(drive_id, changes, entered, known, scope_filter)
                if reading_anchors is not None:
                    anchors = await reading_anchors
                    reading_anchors = None
                    pending_anchors = list(anchors.items)
                if pending_anchors:
                    changes = pending_anchors + changes
                    pending_anchors = []
                if resync:
                    for change in changes:
                        if isinstance(change, RemoteItem):
                            seen.add(change.item_id)
                        else:
                            seen.discard(change.item_id)
                if page.delta_link is not None:
                    if resync and known_ids is not None:
                        if known is None:
                            known = set(await _maybe_await(known_ids()))
                        missing = known - seen - anchors.ancestor_ids
                        gone = [RemoteDeletion(drive_id, item_id) for item_id in sorted(missing)]
                        reconciled = len(gone)
                        changes.extend(gone)
                    last = DeltaPage(drive_id, scope_key, tuple(changes), delta_link=page.delta_link)
                    await _maybe_await(save_page(last))
                    pages += 1
                    delivered += len(changes)
                    return DeltaResult(
                        drive_id=drive_id,
                        scope_item_id=scope_key,
                        mode=mode,
                        delta_link=page.delta_link,
                        pages=pages,
                        changes=delivered,
                        skipped_items=skipped,
                        filtered_out=filtered,
                        resynced=resync,
                        reconciled_deletions=reconciled,
                        fell_back=False,
                    )
                if page.next_link is None or page.next_link in (url, previous_url):
                    raise MalformedResponse(
                        f"{SERVICE} sent a page of changes with no way to continue (no next or delta "
                        "link, or the same link again). The copy will try again later.",
                        service=SERVICE,
                    )
                saved = page.next_link + RESYNC_MARK if resync else page.next_link
                await _maybe_await(save_page(DeltaPage(drive_id, scope_key, tuple(changes), next_link=saved)))
                pages += 1
                delivered += len(changes)
                previous_url, url = url, page.next_link
        finally:
            await _cancel(reading_anchors)

    async def _with_moved_in(
        self,
        drive_id: str,
        changes: list[RemoteChange],
        entered: list[RemoteItem],
        known: set[str] | None,
        scope_filter: _ScopeFilter,
    ) -> list[RemoteChange]:
        """A root delta reports a folder moved into the selection, not what it holds: list it.

        Folders the caller already knows (renamed in place) are not listed again; without
        ``known_ids`` every changed folder inside the selection is (a new one is cheap: empty).
        """
        to_list = {f.item_id for f in entered if known is None or f.item_id not in known}
        if not to_list:
            return changes
        result: list[RemoteChange] = []
        for change in changes:
            result.append(change)
            if isinstance(change, RemoteItem) and change.item_id in to_list:
                subtree = await self._subtree(drive_id, change.item_id, scope_filter)
                result.extend(subtree)
                if known is not None:
                    known.update(item.item_id for item in subtree)
                    known.add(change.item_id)
        return result

    async def _subtree(self, drive_id: str, folder_id: str, scope_filter: _ScopeFilter) -> list[RemoteItem]:
        found: list[RemoteItem] = []
        pending = [folder_id]
        while pending:
            current = pending.pop()
            async for page in self._client.iter_children(drive_id, current):
                for child in page:
                    found.append(child)
                    if child.is_folder:
                        scope_filter.mark_inside(child.item_id)
                        pending.append(child.item_id)
        return found

    # -- selected folders and their ancestors --------------------------------------------------

    async def _anchors(self, drive_id: str, scopes: Sequence[str], *, mode: DeltaMode, force: bool) -> _Anchors:
        """Each selected folder, plus its ancestors when they are new to this enumerator."""
        items: dict[str, RemoteItem] = {}
        ancestor_ids: set[str] = set()
        for scope in scopes:
            url = (
                self._client.item_url(drive_id, scope)
                + "?"
                + urllib.parse.urlencode({"$select": ITEM_SELECT}, safe="$,@.")
            )
            try:
                data = await self._client.get_json(url, what="reading a selected folder")
            except NotFound as exc:
                if mode is DeltaMode.FOLDER:
                    raise NotFound(
                        "A selected folder no longer exists in OneDrive (deleted, or access was "
                        "removed). Untick it, or choose it again in the folder list.",
                        status=exc.status,
                        code=exc.code,
                        service=SERVICE,
                    ) from exc
                continue  # root mode: its tombstone comes through the delta itself
            item = parse_item(data, drive_id=drive_id)
            if not isinstance(item, RemoteItem):
                raise MalformedResponse(
                    f"{SERVICE} described a selected folder without its id or parent.", service=SERVICE
                )
            reference = data.get("parentReference")
            path = reference.get("path") if isinstance(reference, dict) else None
            key = (drive_id, scope)
            cached = self._ancestry.get(key)
            if not force and isinstance(path, str) and cached is not None and cached[0] == path:
                ancestor_ids.update(a.item_id for a in cached[1])
                items.setdefault(item.item_id, item)
                continue
            chain = await self._walk_up(drive_id, item)
            if isinstance(path, str):
                self._ancestry[key] = (path, tuple(chain))
            for ancestor in chain:  # from the root down: parents before children
                items.setdefault(ancestor.item_id, ancestor)
                ancestor_ids.add(ancestor.item_id)
            items.setdefault(item.item_id, item)
        return _Anchors(list(items.values()), ancestor_ids - set(scopes))

    async def _walk_up(self, drive_id: str, item: RemoteItem) -> list[RemoteItem]:
        chain: list[RemoteItem] = []
        parent_id = item.parent_id
        seen = {item.item_id}
        while parent_id is not None and parent_id not in seen and len(chain) < _MAX_DEPTH:
            seen.add(parent_id)
            parent = await self._client.get_item(drive_id, parent_id)
            chain.append(parent)
            parent_id = parent.parent_id
        chain.reverse()
        return chain
