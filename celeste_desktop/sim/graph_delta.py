"""Delta queries of the simulated Graph: opaque tokens over the tenant's change log.

A first call (no token) enumerates the scope (the drive root or a folder) from a snapshot of
item ids taken when it starts, parents before children, and finishes with a deltaLink whose
token holds the change sequence number seen at the start: changes made while the client pages
through come again in the next round, as with the real service. Later calls replay the change
log after that number. Like Graph, the feed shows each item's latest state, brings changed
items' ancestor folders along unless the caller sends ``deltaExcludeParent``, repeats some
items within one enumeration (the last occurrence wins), and answers 410 Gone once tokens have
been expired (``expire_all``) or were never issued.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from celeste_desktop.sim.tenant_model import Drive, Item, Tenant

_MAX_ENUMERATIONS = 32
_REPEAT_EVERY_PAGES = 3


class DeltaGone(Exception):
    """The token cannot be served: the client must start a fresh enumeration (410 Gone)."""


@dataclass
class DeltaPage:
    """One page: items (with ``True`` for those to render as deleted) and the next token."""

    entries: list[tuple[Item, bool]]
    next_token: str | None = None
    delta_token: str | None = None


@dataclass
class DeltaEngine:
    """Pages of changes for one tenant; thread-safe through the tenant's lock."""

    tenant: Tenant
    repeat_items: bool = True
    secret: bytes = b""
    _enumerations: OrderedDict[int, list[str]] = field(default_factory=OrderedDict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- tokens -------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        # Derived from the seed: a demo stack restarted with the same tenant keeps honouring the
        # app's saved deltaLink (a token from ahead of this instance's log still answers 410).
        if not self.secret:
            self.secret = hashlib.sha256(f"celeste-sim-delta:{self.tenant.seed}".encode()).digest()

    def _encode(self, state: dict[str, Any]) -> str:
        raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        tag = hmac.new(self.secret, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(raw + tag).decode().rstrip("=")

    def _decode(self, token: str, drive: Drive, scope: Item) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            raw, tag = blob[:-12], blob[-12:]
            if not hmac.compare_digest(tag, hmac.new(self.secret, raw, hashlib.sha256).digest()[:12]):
                raise ValueError("bad tag")
            state: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise DeltaGone("unknown token") from exc
        if state.get("d") != drive.id or state.get("r") != scope.id:
            raise DeltaGone("token of another drive or folder")
        if state.get("e") != drive.delta_epoch or int(state.get("s", state.get("b", 0))) > self.tenant.seq:
            raise DeltaGone("token expired")
        return state

    def latest_token(self, drive: Drive, scope: Item) -> str:
        with self.tenant.lock:
            return self._encode({"k": "c", "d": drive.id, "r": scope.id, "e": drive.delta_epoch,
                                 "s": self.tenant.seq})

    def expire_all(self) -> None:
        """Every token issued so far answers 410 from now on."""
        with self.tenant.lock:
            for drive in self.tenant.drives.values():
                drive.delta_epoch += 1
            self._enumerations.clear()

    # -- pages --------------------------------------------------------------------------------

    def page(self, drive: Drive, scope: Item, token: str | None, top: int,
             exclude_parent: bool) -> DeltaPage:
        with self.tenant.lock:
            if token is None:
                return self._start_full(drive, scope, top)
            state = self._decode(token, drive, scope)
            if state["k"] == "f":
                return self._full(drive, scope, state, top)
            return self._changes(drive, scope, state, top, exclude_parent)

    def _start_full(self, drive: Drive, scope: Item, top: int) -> DeltaPage:
        enumeration = next(self._counter)
        self._enumerations[enumeration] = [item.id for item in self.tenant.walk(scope.id)]
        while len(self._enumerations) > _MAX_ENUMERATIONS:
            self._enumerations.popitem(last=False)
        state = {"k": "f", "d": drive.id, "r": scope.id, "e": drive.delta_epoch,
                 "b": self.tenant.seq, "n": enumeration, "o": 0, "p": 0}
        return self._full(drive, scope, state, top)

    def _full(self, drive: Drive, scope: Item, state: dict[str, Any], top: int) -> DeltaPage:
        ids = self._enumerations.get(state["n"])
        if ids is None:
            raise DeltaGone("enumeration no longer held")
        self._enumerations.move_to_end(state["n"])
        offset, page_no = int(state["o"]), int(state["p"])
        chosen = ids[offset : offset + top]
        if self.repeat_items and offset > 0 and page_no % _REPEAT_EVERY_PAGES == _REPEAT_EVERY_PAGES - 1:
            # Graph may send an item twice in one enumeration; clients must keep the last one.
            chosen = [ids[offset - 1], *chosen]
        entries = [(self.tenant.items[i], False) for i in chosen]
        if offset + top < len(ids):
            return DeltaPage(entries, next_token=self._encode({**state, "o": offset + top, "p": page_no + 1}))
        self._enumerations.pop(state["n"], None)
        done = {"k": "c", "d": drive.id, "r": scope.id, "e": drive.delta_epoch, "s": state["b"]}
        return DeltaPage(entries, delta_token=self._encode(done))

    def _changes(self, drive: Drive, scope: Item, state: dict[str, Any], top: int,
                 exclude_parent: bool) -> DeltaPage:
        tenant = self.tenant
        since = int(state["s"])
        upto = int(state.get("u", tenant.seq))
        cursor = int(state.get("c", since))
        log = drive.log
        index = bisect.bisect_right(log, cursor, key=lambda entry: entry.seq)
        entries: list[tuple[Item, bool]] = []
        seen: set[str] = set()
        whole_drive = scope.id == drive.root_id

        def emit(item: Item, as_deleted: bool = False) -> None:
            if not exclude_parent:
                for parent in tenant.ancestors(item):
                    if parent.id not in seen and (whole_drive or tenant.is_within(parent, scope.id)):
                        seen.add(parent.id)
                        entries.append((parent, False))
            seen.add(item.id)
            entries.append((item, as_deleted))

        while index < len(log) and log[index].seq <= upto and len(entries) < top:
            entry = log[index]
            index += 1
            cursor = entry.seq
            item = tenant.items[entry.item_id]
            if item.seq != entry.seq:
                continue  # a later change of the same item supersedes this one
            if whole_drive:
                emit(item)
                continue
            inside = tenant.is_within(item, scope.id)
            was_inside = inside
            if entry.old_parent_id is not None:
                was_inside = tenant.is_within(tenant.items[entry.old_parent_id], scope.id)
            if inside and not was_inside:
                emit(item)  # moved in: the client has never seen anything below it
                for below in tenant.walk(item.id)[1:]:
                    entries.append((below, False))
            elif inside:
                emit(item)
            elif was_inside:
                entries.append((item, True))  # moved out of the folder: gone from its view
        common = {"k": "c", "d": drive.id, "r": scope.id, "e": drive.delta_epoch}
        if index < len(log) and log[index].seq <= upto:
            return DeltaPage(entries, next_token=self._encode({**common, "s": since, "u": upto,
                                                              "c": cursor}))
        return DeltaPage(entries, delta_token=self._encode({**common, "s": upto}))
