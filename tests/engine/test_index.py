"""The drive index: folding delta into it, rebuilding paths from parent ids, deciding selection."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from celeste_desktop.domain.models import RemoteChange, RemoteDeletion, RemoteItem, SelectionEntry
from celeste_desktop.engine.index import (
    ItemTree,
    Selected,
    apply_changes,
    folder_path,
    is_selected,
)

if TYPE_CHECKING:
    from conftest import Drive

D = "drive-1"


def gone(item_id: str) -> RemoteDeletion:
    return RemoteDeletion(D, item_id)


def tick(item_id: str, *, included: bool = True, urgent: bool = False) -> SelectionEntry:
    return SelectionEntry(D, item_id, included, urgent)


def ship(drive: Drive) -> None:
    """Yacht Docs/02_ENGINEERING/{Main Engines/manual.pdf, Generators/gen.pdf}, root.pdf."""
    drive.folder("docs", "Yacht Docs")
    drive.folder("eng", "02_ENGINEERING", "docs")
    drive.folder("main", "Main Engines", "eng")
    drive.folder("gens", "Generators", "eng")
    drive.file("manual", "manual.pdf", "main")
    drive.file("gen", "gen.pdf", "gens")
    drive.file("top", "root.pdf")


# --- apply_changes -----------------------------------------------------------------------------


def test_apply_changes_returns_a_new_index_and_leaves_the_old_one_alone(drive: Drive) -> None:
    ship(drive)
    before = dict(drive.items)
    after = apply_changes(drive.items, [gone("manual")])
    assert "manual" not in after
    assert drive.items == before


def test_the_last_occurrence_of_an_item_wins(drive: Drive) -> None:
    ship(drive)
    first = RemoteItem(D, "new", "main", "draft.pdf", False, size=1)
    second = RemoteItem(D, "new", "gens", "final.pdf", False, size=2)
    index = apply_changes(drive.items, [first, second])
    assert index["new"] == second
    assert folder_path(index, "new") == ("Yacht Docs", "02_ENGINEERING", "Generators")


def test_deleted_then_listed_again_means_restored(drive: Drive) -> None:
    ship(drive)
    index = apply_changes(drive.items, [gone("manual"), drive.items["manual"]])
    assert "manual" in index
    index = apply_changes(drive.items, [drive.items["manual"], gone("manual")])
    assert "manual" not in index


def test_a_deleted_folder_takes_its_whole_subtree(drive: Drive) -> None:
    ship(drive)
    index = apply_changes(drive.items, [gone("eng")])  # delta reported only the folder
    assert set(index) == {"root", "docs", "top"}


def test_a_file_moved_out_of_a_deleted_folder_survives_whatever_the_order(drive: Drive) -> None:
    ship(drive)
    moved = drive.change("manual", parent_id="docs")
    orders: list[list[RemoteChange]] = [[moved, gone("eng")], [gone("eng"), moved]]
    for changes in orders:
        index = apply_changes(drive.items, changes)
        assert "manual" in index and "gen" not in index
        assert folder_path(index, "manual") == ("Yacht Docs",)


def test_a_child_listed_after_its_deleted_parent_goes_with_it(drive: Drive) -> None:
    ship(drive)
    late_child = RemoteItem(D, "late", "main", "late.pdf", False)
    index = apply_changes(drive.items, [gone("main"), late_child])
    assert "late" not in index and "manual" not in index
    assert "gen" in index


def test_deleting_an_unknown_id_changes_nothing(drive: Drive) -> None:
    ship(drive)
    assert apply_changes(drive.items, [gone("never-seen")]) == drive.items


def test_orphans_are_kept_until_their_parent_arrives(drive: Drive) -> None:
    ship(drive)
    orphan = RemoteItem(D, "orphan", "new-folder", "waiting.pdf", False)
    index = apply_changes(drive.items, [orphan])
    assert "orphan" in index
    assert folder_path(index, "orphan") is None
    parent = RemoteItem(D, "new-folder", "docs", "New", True)
    index = apply_changes(index, [parent])
    assert folder_path(index, "orphan") == ("Yacht Docs", "New")


def test_orphans_whose_parent_is_reported_deleted_go(drive: Drive) -> None:
    ship(drive)
    orphan = RemoteItem(D, "orphan", "unknown-folder", "waiting.pdf", False)
    index = apply_changes(drive.items, [orphan, gone("unknown-folder")])
    assert "orphan" not in index


def test_a_moved_folder_keeps_its_subtree_and_paths_follow(drive: Drive) -> None:
    ship(drive)
    moved = drive.change("main", parent_id="root", name="Engines")
    index = apply_changes(drive.items, [moved])  # children are not reported on a move
    assert folder_path(index, "manual") == ("Engines",)


def test_parents_may_arrive_after_their_children(drive: Drive) -> None:
    changes = [
        RemoteItem(D, "f", "b", "f.pdf", False),
        RemoteItem(D, "b", "a", "B", True),
        RemoteItem(D, "a", "root", "A", True),
    ]
    index = apply_changes(drive.items, changes)
    assert folder_path(index, "f") == ("A", "B")


# --- folder_path -------------------------------------------------------------------------------


def test_a_file_at_the_root_has_an_empty_folder_path(drive: Drive) -> None:
    ship(drive)
    assert folder_path(drive.items, "top") == ()
    assert folder_path(drive.items, "root") == ()
    assert folder_path(drive.items, "docs") == ()
    assert folder_path(drive.items, "eng") == ("Yacht Docs",)


def test_an_unknown_item_has_no_path(drive: Drive) -> None:
    assert folder_path(drive.items, "nope") is None


def test_cycles_resolve_to_no_path_instead_of_hanging(drive: Drive) -> None:
    drive.folder("a", "A", "b")
    drive.folder("b", "B", "a")
    drive.folder("self", "Self", "self")
    drive.file("f", "f.pdf", "a")
    tree = ItemTree(drive.items, [tick("a")])
    assert tree.folder_path("f") is None
    assert tree.folder_path("a") is None
    assert tree.folder_path("self") is None
    assert tree.selection_state("f") == (Selected.INCLUDED, tick("a"))


def test_an_item_without_a_parent_counts_as_the_root() -> None:
    # RemoteItem documents parent_id None as "the drive root", with or without is_root.
    items = {
        "r": RemoteItem(D, "r", None, "root", True),
        "f": RemoteItem(D, "f", "r", "f.pdf", False),
    }
    assert folder_path(items, "f") == ()


def test_deep_trees_do_not_hit_the_recursion_limit(drive: Drive) -> None:
    parent = "root"
    for depth in range(3000):
        drive.folder(f"d{depth}", f"level{depth}", parent)
        parent = f"d{depth}"
    drive.file("deep", "deep.pdf", parent)
    path = folder_path(drive.items, "deep")
    assert path is not None and len(path) == 3000 and path[-1] == "level2999"


# --- selection ---------------------------------------------------------------------------------


def test_a_ticked_folder_selects_everything_below_it(drive: Drive) -> None:
    ship(drive)
    entry = tick("eng", urgent=True)
    assert is_selected(drive.items, "manual", [entry]) == entry
    assert is_selected(drive.items, "gen", [entry]) == entry
    assert is_selected(drive.items, "top", [entry]) is None


def test_an_unticked_child_of_a_ticked_parent_stays_excluded(drive: Drive) -> None:
    ship(drive)
    selection = [tick("eng"), tick("gens", included=False)]
    assert is_selected(drive.items, "manual", selection) == tick("eng")
    assert is_selected(drive.items, "gen", selection) is None
    assert ItemTree(drive.items, selection).selection_state("gen") == (
        Selected.EXCLUDED,
        tick("gens", included=False),
    )


def test_a_ticked_folder_below_an_unticked_one_is_included(drive: Drive) -> None:
    ship(drive)
    selection = [tick("docs"), tick("eng", included=False), tick("main", urgent=True)]
    assert is_selected(drive.items, "manual", selection) == tick("main", urgent=True)
    assert is_selected(drive.items, "gen", selection) is None


def test_a_folder_created_later_under_a_ticked_folder_is_included(drive: Drive) -> None:
    ship(drive)
    index = apply_changes(
        drive.items,
        [RemoteItem(D, "new", "eng", "Hydraulics", True), RemoteItem(D, "nf", "new", "h.pdf", False)],
    )
    assert is_selected(index, "nf", [tick("eng")]) == tick("eng")


def test_ticking_the_drive_root_selects_everything(drive: Drive) -> None:
    ship(drive)
    for item_id in ("manual", "gen", "top"):
        assert is_selected(drive.items, item_id, [tick("root")]) == tick("root")


def test_entries_of_other_drives_are_ignored(drive: Drive) -> None:
    ship(drive)
    other = SelectionEntry("drive-2", "eng", True)
    assert is_selected(drive.items, "manual", [other]) is None


def test_without_any_entry_nothing_is_selected(drive: Drive) -> None:
    ship(drive)
    tree = ItemTree(drive.items, [])
    assert tree.selection_state("manual") == (Selected.EXCLUDED, None)
    assert tree.selected_entry("manual") is None
    assert tree.nearest_entry("nope") is None


def test_selection_of_an_orphan_is_unknown_unless_an_entry_below_the_break_decides(
    drive: Drive,
) -> None:
    drive.folder("lost", "Lost", "missing-parent")
    drive.file("orphan", "o.pdf", "lost")
    assert ItemTree(drive.items, [tick("root")]).selection_state("orphan") == (
        Selected.UNKNOWN,
        None,
    )
    assert ItemTree(drive.items, [tick("lost")]).selection_state("orphan") == (
        Selected.INCLUDED,
        tick("lost"),
    )


def test_a_hundred_thousand_items_resolve_in_one_pass(drive: Drive) -> None:
    for top in range(10):
        drive.folder(f"t{top}", f"Top {top}")
        for sub in range(100):
            folder_id = f"t{top}s{sub}"
            drive.folder(folder_id, f"Sub {sub}", f"t{top}")
            for leaf in range(100):
                drive.file(f"{folder_id}f{leaf}", f"{leaf}.pdf", folder_id)
    started = time.perf_counter()
    tree = ItemTree(drive.items, [tick("t3"), tick("t3s7", included=False)])
    selected = sum(1 for item_id in drive.items if tree.selected_entry(item_id) is not None)
    paths = [tree.folder_path(item_id) for item_id in drive.items]
    elapsed = time.perf_counter() - started
    assert selected == 1 + 99 + 99 * 100  # t3 itself, its other subfolders and their files
    assert all(path is not None for path in paths)
    print(f"selection and paths of {len(drive.items)} items: {elapsed:.3f} s")
    assert elapsed < 20  # a loose bound against quadratic blow-ups, not a benchmark
