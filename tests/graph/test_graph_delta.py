"""Delta enumeration against the simulated Graph: scoped per folder, saved page by page, resumed after
a kill, incremental with adds/edits/renames/moves/deletes, reconciled after 410, and the filtered
root-delta fallback where folder delta is refused."""

from __future__ import annotations

from collections import Counter

import pytest
from graph_helpers import FakeStore, GraphHarness, SimulatedKill, truth_below

from celeste_desktop.domain.errors import MalformedResponse, NotFound
from celeste_desktop.domain.models import RemoteDeletion, RemoteItem
from celeste_desktop.graph.delta import RESYNC_MARK, DeltaEnumerator, DeltaMode, DeltaResult


async def run(
    graph: GraphHarness,
    store: FakeStore,
    scope_id: str | None,
    *,
    enumerator: DeltaEnumerator | None = None,
    mode: DeltaMode = DeltaMode.FOLDER,
    selection: tuple[str, ...] = (),
    drive_id: str | None = None,
) -> DeltaResult:
    enumerator = enumerator or graph.enumerator(page_size=5)
    return await enumerator.enumerate(
        drive_id or graph.personal, scope_id, cursor=store if (store.next_link or store.delta_link) else None,
        save_page=store.save, mode=mode, selection=selection, known_ids=store.known_ids,
        known_folders=store.folders(),
    )


def delta_requests(graph: GraphHarness) -> list[str]:
    return [s.url.path for s in graph.sent if "/delta" in s.url.path]


async def test_first_enumeration_of_one_folder(graph: GraphHarness) -> None:
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    result = await run(graph, store, bridge.id)
    assert result.mode is DeltaMode.FOLDER and not result.fell_back and not result.resynced
    assert store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    # Ancestors come along so paths can be rebuilt from the drive root.
    root_id = graph.sim.graph.tenant.drives[graph.personal].root_id
    assert store.items[root_id].is_root and store.items[bridge.id].parent_id == root_id
    # Saved page by page: every page but the last carries a next link, the last the delta link.
    assert result.pages == len(store.pages) > 2
    assert all(p.next_link and not p.delta_link for p in store.pages[:-1])
    assert store.pages[-1].delta_link == result.delta_link and store.pages[-1].next_link is None
    # Scoped: only the folder's delta was asked for, never the drive's.
    assert delta_requests(graph) and all(f"/items/{bridge.id}/delta" in p for p in delta_requests(graph))
    assert not any(i.name == "02_ENGINEERING" for i in store.items.values())


async def test_the_same_item_twice_in_one_enumeration_is_delivered_in_order(graph: GraphHarness) -> None:
    engineering = graph.item("/02_ENGINEERING")
    store = FakeStore()
    await run(graph, store, engineering.id)
    delivered = Counter(c.item_id for p in store.pages for c in p.changes)
    assert max(delivered.values()) >= 2  # the simulator repeats items, like Graph
    assert store.below(engineering.id) == truth_below(graph.sim, engineering.id)


async def test_incremental_changes(graph: GraphHarness) -> None:
    g = graph.sim.graph
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    enumerator = graph.enumerator(page_size=5)
    await run(graph, store, bridge.id, enumerator=enumerator)
    pages_before = len(store.pages)

    g.add_file("/01_BRIDGE/Navigation", "New chart notes é#.pdf", 5_000)
    g.add_folder("/01_BRIDGE", "Ωmega")
    g.add_file("/01_BRIDGE/Ωmega", "inside.txt", 10)
    changed = g.change("/01_BRIDGE/Communications/" + first_file(graph, "/01_BRIDGE/Communications"))
    renamed = g.rename("/01_BRIDGE/Passage Plans/" + first_file(graph, "/01_BRIDGE/Passage Plans"), "Renamed plan.pdf")
    moved_within = g.move("/01_BRIDGE/Navigation/" + first_file(graph, "/01_BRIDGE/Navigation"),
                          "/01_BRIDGE/Communications")
    moved_out = g.move("/01_BRIDGE/Bridge Procedures/" + first_file(graph, "/01_BRIDGE/Bridge Procedures"),
                       "/02_ENGINEERING")
    moved_in = g.move("/03_SYSTEMS/Electrical/" + first_file(graph, "/03_SYSTEMS/Electrical"), "/01_BRIDGE")
    deleted = g.find("/01_BRIDGE/Navigation/" + first_file(graph, "/01_BRIDGE/Navigation"))
    g.delete(deleted.id)
    gone_folder = g.find("/01_BRIDGE/Bridge Procedures")
    gone_below = [i.id for i in g.tenant.walk(gone_folder.id)]
    g.delete(gone_folder.id)

    graph.sent.clear()
    result = await run(graph, store, bridge.id, enumerator=enumerator)
    assert not result.resynced and result.pages == len(store.pages) - pages_before
    assert store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    assert store.items[changed.id].quickxor == g.item_json(changed)["quickXorHash"]
    assert store.items[renamed.id].name == "Renamed plan.pdf"
    assert store.items[moved_within.id].parent_id == g.find("/01_BRIDGE/Communications").id
    assert moved_out.id not in store.items and moved_in.id in store.items
    assert deleted.id not in store.items and not set(gone_below) & set(store.items)
    # Incremental folder delta: parents are left out (the index has them already).
    assert all(s.headers.get("deltaexcludeparent") == "true" for s in graph.sent if "/delta" in s.url.path)
    # Ancestors were not fetched again: the folder's place did not change.
    item_gets = [s for s in graph.sent if "/delta" not in s.url.path]
    assert len(item_gets) == 1  # the selected folder itself


async def test_a_renamed_ancestor_is_noticed(graph: GraphHarness) -> None:
    navigation = graph.item("/01_BRIDGE/Navigation")
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    enumerator = graph.enumerator()
    await run(graph, store, navigation.id, enumerator=enumerator)
    assert store.items[bridge.id].name == "01_BRIDGE"
    graph.sim.graph.rename(bridge.id, "01_BRIDGE (old)")
    await run(graph, store, navigation.id, enumerator=enumerator)
    assert store.items[bridge.id].name == "01_BRIDGE (old)"


async def test_a_kill_mid_enumeration_resumes_from_the_last_saved_page(graph: GraphHarness) -> None:
    engineering = graph.item("/02_ENGINEERING")
    store = FakeStore(crash_after=2)
    with pytest.raises(SimulatedKill):
        await run(graph, store, engineering.id)
    assert len(store.pages) == 2 and store.next_link and not store.delta_link
    saved_link = store.next_link
    store.crash_after = None
    graph.sent.clear()
    result = await run(graph, store, engineering.id)
    first_delta = next(s for s in graph.sent if "/delta" in s.url.path)
    assert str(first_delta.url) == saved_link  # followed verbatim
    assert store.below(engineering.id) == truth_below(graph.sim, engineering.id)
    assert result.delta_link == store.delta_link


async def test_410_resyncs_and_reconciles(graph: GraphHarness) -> None:
    g = graph.sim.graph
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    enumerator = graph.enumerator(page_size=5)  # one for the app's life: it caches ancestors
    await run(graph, store, bridge.id, enumerator=enumerator)
    unchanged = dict(store.items)
    doomed = [g.find("/01_BRIDGE/Navigation/" + first_file(graph, "/01_BRIDGE/Navigation")),
              g.find("/01_BRIDGE/Passage Plans")]
    doomed_ids = {i.id for d in doomed for i in g.tenant.walk(d.id)}
    for item in doomed:
        g.delete(item.id)
    added = g.add_file("/01_BRIDGE", "After the gap.pdf", 1_000)
    g.expire_delta_tokens()

    result = await run(graph, store, bridge.id, enumerator=enumerator)
    assert result.resynced and result.reconciled_deletions == len(doomed_ids)
    assert store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    assert added.id in store.items and not doomed_ids & set(store.items)
    # Reconciled, not re-listed as new: the other files are unchanged in the index.
    def files(items: dict[str, RemoteItem]) -> dict[str, tuple[object, ...]]:
        return {i.item_id: (i.name, i.parent_id, i.size, i.quickxor) for i in items.values()
                if not i.is_folder and i.item_id not in doomed_ids and i.item_id != added.id}

    assert files(store.items) == files(unchanged)
    last = store.pages[-1]
    assert {c.item_id for c in last.changes if isinstance(c, RemoteDeletion)} == doomed_ids
    root_id = graph.sim.graph.tenant.drives[graph.personal].root_id
    assert root_id in store.items  # ancestors survive the reconcile
    # The next run is incremental again.
    again = await run(graph, store, bridge.id, enumerator=enumerator)
    assert not again.resynced and again.pages == 1


async def test_a_resync_interrupted_by_a_kill_starts_over(graph: GraphHarness) -> None:
    g = graph.sim.graph
    engineering = graph.item("/02_ENGINEERING")
    store = FakeStore()
    await run(graph, store, engineering.id)
    gone = g.find("/02_ENGINEERING/Generators")
    gone_ids = {i.id for i in g.tenant.walk(gone.id)}
    g.delete(gone.id)
    g.expire_delta_tokens()
    store.crash_after = len(store.pages) + 1
    with pytest.raises(SimulatedKill):
        await run(graph, store, engineering.id)
    assert store.next_link and store.next_link.endswith(RESYNC_MARK)
    store.crash_after = None
    result = await run(graph, store, engineering.id)
    assert result.resynced and result.reconciled_deletions == len(gone_ids)
    assert store.below(engineering.id) == truth_below(graph.sim, engineering.id)
    assert not any(RESYNC_MARK in str(s.url) for s in graph.sent)  # the marker never leaves the app


async def test_a_drive_that_refuses_folder_delta_falls_back_to_a_filtered_root_delta(graph: GraphHarness) -> None:
    g = graph.sim.graph
    bridge = graph.item("/01_BRIDGE")
    folder_store = FakeStore()
    await run(graph, folder_store, bridge.id)

    g.set_folder_delta_supported(False)
    root_store = FakeStore()
    result = await run(graph, root_store, bridge.id, selection=(bridge.id,))
    assert result.mode is DeltaMode.ROOT and result.fell_back and result.scope_item_id == ""
    assert result.filtered_out > 0
    assert root_store.below(bridge.id) == folder_store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    assert not any(i.name == "02_ENGINEERING" for i in root_store.items.values())
    assert any(p.endswith("/root/delta") for p in delta_requests(graph))

    # The caller remembers ROOT for this drive; later runs filter the changes the same way.
    g.add_file("/01_BRIDGE/Navigation", "added later.pdf", 100)
    out = g.move("/01_BRIDGE/Communications/" + first_file(graph, "/01_BRIDGE/Communications"), "/07_SAFETY")
    came_in = g.move("/05_DRAWINGS/Piping", "/01_BRIDGE")
    g.add_file("/02_ENGINEERING", "elsewhere.pdf", 100)
    again = await run(graph, root_store, None, mode=DeltaMode.ROOT, selection=(bridge.id,))
    assert again.mode is DeltaMode.ROOT and not again.fell_back
    assert root_store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    assert out.id not in root_store.items and came_in.id in root_store.items
    assert not any(i.name == "elsewhere.pdf" for i in root_store.items.values())


async def test_a_library_without_folder_delta_gives_the_same_index(graph: GraphHarness) -> None:
    g = graph.sim.graph
    docs = graph.item("/Yacht Docs", graph.library)
    on = FakeStore()
    await run(graph, on, docs.id, drive_id=graph.library)
    g.set_folder_delta_supported(False, drive_id=graph.library)
    off = FakeStore()
    result = await run(graph, off, docs.id, drive_id=graph.library)
    assert result.fell_back
    assert off.below(docs.id) == on.below(docs.id) == truth_below(graph.sim, docs.id)


async def test_whole_drive_root_delta(graph: GraphHarness) -> None:
    store = FakeStore()
    result = await run(graph, store, None, mode=DeltaMode.ROOT, enumerator=graph.enumerator(page_size=200))
    root_id = graph.sim.graph.tenant.drives[graph.personal].root_id
    assert result.filtered_out == 0 and store.below(root_id) == truth_below(graph.sim, root_id)
    malware = [i for i in store.items.values() if i.malware]
    notebooks = [i for i in store.items.values() if i.package_type == "oneNote"]
    assert len(malware) == 1 and len(notebooks) == 1


async def test_a_cut_delta_page_is_fetched_again(graph: GraphHarness) -> None:
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    graph.sim.faults.script("graph", "malformed", times=2, path="/delta")
    await run(graph, store, bridge.id)
    assert store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    graph.sim.faults.script("graph", "malformed", times=3, path="/delta")
    with pytest.raises(MalformedResponse):
        await run(graph, FakeStore(), bridge.id)


async def test_a_selected_folder_that_vanished(graph: GraphHarness) -> None:
    bridge = graph.item("/01_BRIDGE")
    graph.sim.graph.delete(bridge.id)
    with pytest.raises(NotFound) as caught:
        await run(graph, FakeStore(), bridge.id)
    assert "no longer exists" in caught.value.message


async def test_the_folder_and_its_ancestors_are_read_while_the_first_page_is_asked_for(graph: GraphHarness) -> None:
    import time

    bridge = graph.item("/01_BRIDGE")
    # Every Graph request takes 1 s, as over a slow satellite link: the folder, its parent (the
    # root) and the first delta page one after another would take 3 s; side by side, 2 s.
    graph.sim.faults.script("graph", "delay", seconds=1.0, times=50)
    store = FakeStore()
    started = time.monotonic()
    await graph.enumerator(page_size=1000).enumerate(
        graph.personal, bridge.id, cursor=None, save_page=store.save, mode=DeltaMode.FOLDER,
        selection=(bridge.id,), known_ids=store.known_ids, known_folders=store.folders(),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert store.below(bridge.id) == truth_below(graph.sim, bridge.id)
    root_id = graph.sim.graph.tenant.drives[graph.personal].root_id
    assert store.pages[0].changes[0].item_id == root_id  # the ancestors still come first
    assert elapsed < 2.6, f"{elapsed:.2f} s: the anchors were read before the delta, not beside it"


async def test_pages_hold_remote_items_with_parent_ids(graph: GraphHarness) -> None:
    bridge = graph.item("/01_BRIDGE")
    store = FakeStore()
    await run(graph, store, bridge.id)
    items = [c for p in store.pages for c in p.changes if isinstance(c, RemoteItem)]
    assert all(i.parent_id or i.is_root for i in items)
    assert all(i.drive_id == graph.personal for i in items)


def first_file(graph: GraphHarness, path: str) -> str:
    folder = graph.item(path)
    tenant = graph.sim.graph.tenant
    with tenant.lock:
        return next(tenant.items[i].name for i in tenant.sorted_children(folder) if tenant.items[i].kind == "file")
