"""Property: syncing a changing tenant round by round through delta ends where a fresh full sync
of the final tenant would, and renames and moves never send bytes again.

A small tenant (folders, files with content versions) changes by random operations; at each
sync round it reports its changes as Graph delta would (changed items with their ancestors, in
any order, stale versions before the final one, with or without cTag, deleted folders without
their children), the engine folds them into its index, plans, and runs the plan against a fake
destination that refuses to overwrite an object another live file still owns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from celeste_desktop.domain.models import (
    ActionKind,
    DeliveredFile,
    Plan,
    RemoteChange,
    RemoteDeletion,
    RemoteItem,
    SelectionEntry,
)
from celeste_desktop.engine.index import apply_changes
from celeste_desktop.engine.planner import plan_sync

DRIVE = "drive-p"
YACHT = "yacht-p"
# Few names, so renames collide, swap and rotate; some are skipped by the rules.
FILE_NAMES = ("a.pdf", "b.pdf", "c.docx", "Café #1.pdf", "~$a.docx", "Thumbs.db")
FOLDER_NAMES = ("X", "Y", "Z", "02_ENGINEERING", "@eaDir")
FOLDER_IDS = ("root", "d1", "d2", "d3", "d4", "d5", "d6")


@dataclass
class Node:
    item_id: str
    parent_id: str | None
    name: str
    is_folder: bool
    version: int = 1
    size: int = 0


@dataclass
class Tenant:
    """The remote drive, and what changed since the last delta round."""

    nodes: dict[str, Node] = field(default_factory=lambda: {"root": Node("root", None, "root", True)})
    # Ordered set of the ids changed since the last round; the first round lists the root too.
    touched: dict[str, None] = field(default_factory=lambda: {"root": None})
    deleted_below: set[str] = field(default_factory=set)  # deleted with a folder
    events: list[RemoteChange] = field(default_factory=list)  # intermediate states, in order
    counters: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})

    def folders(self) -> list[str]:
        return sorted(node_id for node_id, node in self.nodes.items() if node.is_folder)

    def files(self) -> list[str]:
        return sorted(node_id for node_id, node in self.nodes.items() if not node.is_folder)

    def name_free(self, parent_id: str, name: str) -> bool:
        return all(not (n.parent_id == parent_id and n.name == name) for n in self.nodes.values())

    def subtree(self, folder_id: str) -> set[str]:
        found = {folder_id}
        grew = True
        while grew:
            below = {n.item_id for n in self.nodes.values() if n.parent_id in found}
            grew = not below <= found
            found |= below
        return found

    def item(self, node: Node, *, with_ctag: bool) -> RemoteItem:
        is_file = not node.is_folder
        return RemoteItem(
            drive_id=DRIVE,
            item_id=node.item_id,
            parent_id=node.parent_id,
            name=node.name,
            is_folder=node.is_folder,
            size=node.size,
            etag=f"e-{node.item_id}-{node.version}-{node.parent_id}-{node.name}",
            ctag=f"c-{node.item_id}-{node.version}" if is_file and with_ctag else None,
            quickxor=f"h-{node.item_id}-{node.version}" if is_file else None,
            is_root=node.parent_id is None,
        )

    def changed(self, node: Node) -> None:
        self.touched[node.item_id] = None
        self.events.append(self.item(node, with_ctag=False))

    # --- operations (each returns quietly when it does not apply) -------------------------

    def add(self, parent_id: str, name: str, *, folder: bool, size: int = 0) -> None:
        if self.name_free(parent_id, name):
            self.counters[folder] += 1
            item_id = f"{'d' if folder else 'f'}{self.counters[folder]}"
            node = Node(item_id, parent_id, name, folder, size=size)
            self.nodes[item_id] = node
            self.changed(node)

    def edit(self, file_id: str, size: int) -> None:
        node = self.nodes[file_id]
        node.version += 1
        node.size = size
        self.changed(node)

    def rename(self, item_id: str, name: str) -> None:
        node = self.nodes[item_id]
        if item_id != "root" and node.parent_id is not None and self.name_free(node.parent_id, name):
            node.name = name
            self.changed(node)

    def move(self, item_id: str, parent_id: str) -> None:
        node = self.nodes[item_id]
        if item_id == "root" or parent_id in self.subtree(item_id) or not self.name_free(parent_id, node.name):
            return
        node.parent_id = parent_id
        self.changed(node)

    def swap(self, item_id: str, other_id: str, spare: str) -> None:
        """Exchange two siblings' names the way a person does: through a spare name."""
        first, second = self.nodes[item_id], self.nodes[other_id]
        if item_id == other_id or first.parent_id != second.parent_id:
            return
        assert first.parent_id is not None
        if not self.name_free(first.parent_id, spare):
            return
        first_name, second_name = first.name, second.name
        self.rename(item_id, spare)
        self.rename(other_id, first_name)
        self.rename(item_id, second_name)

    def take_name(self, item_id: str, other_id: str, spare: str) -> None:
        """Give a sibling's name to ``item_id`` after renaming that sibling to ``spare``."""
        first, second = self.nodes[item_id], self.nodes[other_id]
        if item_id == other_id or first.parent_id != second.parent_id:
            return
        taken = second.name
        self.rename(other_id, spare)
        self.rename(item_id, taken)

    def delete(self, item_id: str) -> None:
        if item_id == "root":
            return
        for gone in self.subtree(item_id):
            del self.nodes[gone]
            self.deleted_below.add(gone)
        self.touched[item_id] = None
        self.events.append(RemoteDeletion(DRIVE, item_id))

    def relist(self, item_id: str) -> None:
        """Delta reports an item again without a content change (a metadata edit)."""
        self.changed(self.nodes[item_id])

    # --- what the engine sees ---------------------------------------------------------------

    def delta(self, rnd: random.Random) -> list[RemoteChange]:
        final: list[RemoteChange] = []
        reported: set[str] = set()
        for item_id in self.touched:
            node = self.nodes.get(item_id)
            if node is None:  # deleted after a change this round: Graph reports its last state
                final.append(RemoteDeletion(DRIVE, item_id))
                reported.add(item_id)
                continue
            reported.add(item_id)
            while node is not None:  # the item and all its ancestors, as Graph sends them
                final.append(self.item(node, with_ctag=rnd.random() < 0.5))
                node = self.nodes.get(node.parent_id) if node.parent_id else None
        # Items deleted only with their folder may or may not be reported.
        final.extend(
            RemoteDeletion(DRIVE, item_id)
            for item_id in sorted(self.deleted_below - set(self.touched))
            if rnd.random() < 0.5
        )
        # Earlier states of an item may come first, but only of items whose last state follows.
        stale = [event for event in self.events if event.item_id in reported and rnd.random() < 0.5]
        rnd.shuffle(final)  # parents may come after their children
        self.touched.clear()
        self.deleted_below.clear()
        self.events.clear()
        return stale + final

    def full_listing(self) -> dict[str, RemoteItem]:
        return {node.item_id: self.item(node, with_ctag=True) for node in self.nodes.values()}


@dataclass
class FakeDestination:
    """Storage objects and pipeline registrations, with the engine's delivered records."""

    tenant: Tenant
    objects: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (item, version)
    retired: dict[str, tuple[str, int]] = field(default_factory=dict)  # soft-deleted objects
    registrations: dict[str, tuple[str, bool]] = field(default_factory=dict)  # item -> (key, deleted)
    delivered: dict[str, DeliveredFile] = field(default_factory=dict)
    bytes_uploaded: int = 0
    bytes_sent_again: int = 0  # bytes of content that was already delivered and live

    def run(self, plan: Plan, rnd: random.Random | None = None) -> None:
        for action in plan.actions:
            registered = rnd is None or rnd.random() < 0.8  # registration may fail; retried later
            item_id, key = action.item_id, action.storage_key
            record = self.delivered.get(item_id)
            if action.kind in (ActionKind.UPLOAD, ActionKind.RELOCATE):
                self._check_free(item_id, key)
            if action.kind is ActionKind.UPLOAD:
                node = self.tenant.nodes[item_id]
                assert action.quickxor == f"h-{item_id}-{node.version}", "planned from stale content"
                if record is not None and not record.deleted and record.quickxor == action.quickxor:
                    self.bytes_sent_again += action.size
                self.bytes_uploaded += action.size
                self.objects[key] = (item_id, node.version)
                if action.previous_key is not None and action.previous_key != key:
                    assert self.objects.pop(action.previous_key)[0] == item_id, "removed another file"
                record = DeliveredFile(
                    DRIVE, item_id, key, action.ctag, action.quickxor, action.size, "sha",
                    action.folder_path, action.name, registered=registered,
                )  # fmt: skip
            elif action.kind is ActionKind.RELOCATE:
                assert record is not None and not record.deleted and action.previous_key is not None
                moved = self.objects.pop(action.previous_key)
                assert moved[0] == item_id, "moved another file's object"
                self.objects[key] = moved
                record = replace(
                    record, storage_key=key, folder_path=action.folder_path, name=action.name,
                    registered=registered,
                )  # fmt: skip
            elif action.kind is ActionKind.REGISTER:
                assert record is not None and self.objects[key][0] == item_id
                record = replace(record, registered=registered)
            elif action.kind is ActionKind.DELETE:
                assert record is not None and not record.deleted, "deleted twice"
                record = replace(record, deleted=True)
                self.registrations[item_id] = (record.storage_key, True)
                # A soft delete keeps the object; it no longer belongs to the live set.
                self.retired[record.storage_key] = self.objects.pop(record.storage_key)
            if record is not None:
                self.delivered[item_id] = record
                if record.registered and not record.deleted:
                    self.registrations[item_id] = (record.storage_key, False)

    def _check_free(self, item_id: str, key: str) -> None:
        for other, record in self.delivered.items():
            if other != item_id and not record.deleted and record.storage_key == key:
                raise AssertionError(f"{item_id} overwrites {key}, still owned by {other}")

    def leaked(self) -> list[str]:
        """Objects of live files kept at a key they no longer use."""
        return [
            key
            for key, (item_id, _) in self.objects.items()
            if (record := self.delivered.get(item_id)) is not None
            and not record.deleted
            and record.storage_key != key
        ]

    def live(self) -> dict[str, tuple[str, tuple[str, int]]]:
        return {
            item_id: (key, self.objects[key])
            for item_id, (key, deleted) in self.registrations.items()
            if not deleted
        }


# Weighted by repetition: renames and swaps often, so that keys collide, swap and rotate.
OPERATIONS = ("add_file", "add_file", "add_file", "add_folder", "edit", "rename_file", "move_file",
              "rename_folder", "move_folder", "delete_file", "delete_folder", "relist", "swap",
              "swap", "swap", "take_name", "take_name", "sync", "sync", "sync")  # fmt: skip


def sync(tenant: Tenant, index: dict[str, RemoteItem], destination: FakeDestination,
         selection: list[SelectionEntry], rnd: random.Random, *, failures: bool) -> dict[str, RemoteItem]:  # fmt: skip
    index = apply_changes(index, tenant.delta(rnd))
    # The index matches the tenant (cTag presence aside) after every enumeration.
    assert {i: (x.parent_id, x.name, x.is_folder, x.quickxor) for i, x in index.items()} == {
        i: (x.parent_id, x.name, x.is_folder, x.quickxor) for i, x in tenant.full_listing().items()
    }
    plan = plan_sync(yacht_id=YACHT, items=index, selection=selection, delivered=destination.delivered)
    destination.run(plan, rnd if failures else None)
    for action in plan.actions:  # what the examples exercised (--hypothesis-show-statistics)
        event(f"{action.kind.value} {action.reason_code}{' previous' if action.previous_key else ''}")
    return index


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    root_urgent=st.booleans(),
    more_selection=st.lists(
        st.builds(
            lambda item_id, included, urgent: SelectionEntry(DRIVE, item_id, included, urgent),
            st.sampled_from(FOLDER_IDS[1:]),
            st.booleans(),
            st.booleans(),
        ),
        max_size=3,
    ),
    steps=st.integers(min_value=5, max_value=40),
)
def test_incremental_sync_ends_where_a_fresh_sync_would(
    data: st.DataObject, root_urgent: bool, more_selection: list[SelectionEntry], steps: int
) -> None:
    # The drive root ticked, then folders (which may not exist yet) ticked or unticked below.
    selection = [SelectionEntry(DRIVE, "root", True, root_urgent), *more_selection]
    tenant = Tenant()
    destination = FakeDestination(tenant)
    index: dict[str, RemoteItem] = {}
    sizes = st.integers(min_value=0, max_value=3)
    for _ in range(steps):
        operation = data.draw(st.sampled_from(OPERATIONS))
        folders, files = tenant.folders(), tenant.files()
        if operation == "add_file":
            tenant.add(data.draw(st.sampled_from(folders)), data.draw(st.sampled_from(FILE_NAMES)),
                       folder=False, size=data.draw(sizes))  # fmt: skip
        elif operation == "add_folder":
            tenant.add(data.draw(st.sampled_from(folders)), data.draw(st.sampled_from(FOLDER_NAMES)), folder=True)
        elif operation == "sync":
            rnd = random.Random(data.draw(st.integers(0, 2**32 - 1)))
            index = sync(tenant, index, destination, selection, rnd, failures=True)
        elif operation in ("rename_folder", "move_folder", "delete_folder"):
            folder = data.draw(st.sampled_from(folders))
            if operation == "rename_folder":
                tenant.rename(folder, data.draw(st.sampled_from(FOLDER_NAMES)))
            elif operation == "move_folder":
                tenant.move(folder, data.draw(st.sampled_from(folders)))
            else:
                tenant.delete(folder)
        elif operation in ("swap", "take_name"):
            parent = data.draw(st.sampled_from(folders))
            siblings = sorted(n.item_id for n in tenant.nodes.values() if n.parent_id == parent)
            if len(siblings) >= 2:
                pair = st.lists(st.sampled_from(siblings), min_size=2, max_size=2, unique=True)
                item_id, other_id = data.draw(pair)
                names = FOLDER_NAMES if tenant.nodes[item_id].is_folder else FILE_NAMES
                act = tenant.swap if operation == "swap" else tenant.take_name
                act(item_id, other_id, data.draw(st.sampled_from(names)))
        elif files:
            file_id = data.draw(st.sampled_from(files))
            if operation == "edit":
                tenant.edit(file_id, data.draw(sizes))
            elif operation == "rename_file":
                tenant.rename(file_id, data.draw(st.sampled_from(FILE_NAMES)))
            elif operation == "move_file":
                tenant.move(file_id, data.draw(st.sampled_from(folders)))
            elif operation == "delete_file":
                tenant.delete(file_id)
            else:
                tenant.relist(file_id)
    rnd = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    index = sync(tenant, index, destination, selection, rnd, failures=True)
    index = sync(tenant, index, destination, selection, rnd, failures=False)  # registrations retried

    fresh = FakeDestination(tenant)
    fresh.run(plan_sync(yacht_id=YACHT, items=tenant.full_listing(), selection=selection, delivered={}))
    assert destination.live() == fresh.live()
    for item_id, (_, content) in destination.live().items():
        assert content == (item_id, tenant.nodes[item_id].version)
    assert destination.bytes_sent_again == 0, "a rename or move sent bytes again"
    assert destination.leaked() == []
    # Converged: nothing left to do but report skips.
    again = plan_sync(yacht_id=YACHT, items=index, selection=selection, delivered=destination.delivered)
    assert {action.kind for action in again.actions} <= {ActionKind.SKIP}
