"""The sync planner: every decision and reason code, the order of the plan, and its speed."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.models import (
    ActionKind,
    DeliveredFile,
    Plan,
    PlannedAction,
    RemoteItem,
    SelectionEntry,
)
from celeste_desktop.domain.rules import SkipCode, SkipPatterns
from celeste_desktop.engine.planner import content_changed, dependencies, plan_sync, staging_key
from celeste_desktop.storage.keys import MAX_KEY_LENGTH, storage_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conftest import Drive

D = "drive-1"
Y = "yacht-1"
UPLOAD, RELOCATE, REGISTER, DELETE, SKIP = (
    ActionKind.UPLOAD,
    ActionKind.RELOCATE,
    ActionKind.REGISTER,
    ActionKind.DELETE,
    ActionKind.SKIP,
)


def tick(item_id: str, *, included: bool = True, urgent: bool = False) -> SelectionEntry:
    return SelectionEntry(D, item_id, included, urgent)


def plan(
    drive: Drive,
    selection: Sequence[SelectionEntry] = (),
    delivered: Mapping[str, DeliveredFile] | None = None,
    *,
    patterns: SkipPatterns | None = None,
    max_file_size: int | None = None,
) -> Plan:
    """The plan for ``drive`` with ``selection`` (the whole drive when empty)."""
    return plan_sync(
        yacht_id=Y,
        items=drive.items,
        selection=list(selection) or [tick("root")],
        delivered=delivered or {},
        patterns=patterns,
        max_file_size=max_file_size,
    )


def only(result: Plan) -> PlannedAction:
    assert len(result.actions) == 1, result.actions
    return result.actions[0]


def summary(result: Plan) -> list[tuple[str, str, str]]:
    return [(action.kind.value, action.item_id, action.reason_code) for action in result.actions]


def synced(drive: Drive, selection: Sequence[SelectionEntry] = ()) -> dict[str, DeliveredFile]:
    """Delivered records as after a complete first sync of ``drive``."""
    return drive.deliver(plan(drive, selection).of(UPLOAD))


def ship(drive: Drive) -> None:
    drive.folder("docs", "Yacht Docs")
    drive.folder("eng", "02_ENGINEERING", "docs")
    drive.folder("main", "Main Engines", "eng")
    drive.folder("gens", "Generators", "eng")
    drive.file("manual", "manual.pdf", "main", size=3000)
    drive.file("gen", "gen.pdf", "gens", size=2000)
    drive.file("top", "root.pdf", size=1000)


# --- uploads -----------------------------------------------------------------------------------


def test_a_new_file_is_uploaded_with_what_the_executor_needs(drive: Drive) -> None:
    drive.folder("eng", "02_ENGINEERING")
    drive.file("f", "Café #2.pdf", "eng", size=1234, ctag="c1", quickxor="h1")
    action = only(plan(drive, [tick("eng", urgent=True)]))
    assert action == PlannedAction(
        kind=UPLOAD,
        drive_id=D,
        item_id="f",
        folder_path=("02_ENGINEERING",),
        name="Café #2.pdf",
        size=1234,
        storage_key=storage_key(Y, ("02_ENGINEERING",), "Café #2.pdf"),
        previous_key=None,
        reason="new",
        reason_code="new",
        urgent=True,
        ctag="c1",
        quickxor="h1",
    )


def test_a_file_at_the_root_has_an_empty_folder_path(drive: Drive) -> None:
    drive.file("f", "root.pdf")
    action = only(plan(drive))
    assert action.folder_path == ()
    assert action.storage_key == f"{Y}/root.pdf"


def test_keys_follow_the_folder_path_from_the_drive_root(drive: Drive) -> None:
    # Ticking Yacht Docs/02_ENGINEERING keeps "Yacht Docs" in the key; a drive whose root holds
    # 02_ENGINEERING does not. (Tags are the same either way; that is domain/metadata's job.)
    ship(drive)
    nested = only(plan(drive, [tick("eng"), tick("main", included=False)]))
    assert nested.storage_key == f"{Y}/Yacht Docs/02_ENGINEERING/Generators/gen.pdf"
    assert nested.folder_path == ("Yacht Docs", "02_ENGINEERING", "Generators")
    drive.change("eng", parent_id="root")
    top = only(plan(drive, [tick("eng"), tick("main", included=False)]))
    assert top.storage_key == f"{Y}/02_ENGINEERING/Generators/gen.pdf"


def test_a_delivered_file_marked_deleted_is_uploaded_again(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    delivered = drive.deliver(plan(drive).actions, deleted=True)
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason_code, action.previous_key) == (UPLOAD, "new", None)


def test_a_changed_ctag_means_changed_content(drive: Drive) -> None:
    drive.file("f", "a.pdf", ctag="c1", quickxor="h1")
    delivered = synced(drive)
    drive.change("f", ctag="c2", quickxor="h2", etag="e2")
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason, action.reason_code) == (
        UPLOAD,
        "content changed",
        "content_changed",
    )
    assert action.previous_key is None
    assert (action.ctag, action.quickxor) == ("c2", "h2")


def test_business_delta_items_without_ctag_but_the_same_hash_are_left_alone(drive: Drive) -> None:
    drive.file("f", "a.pdf", ctag="c1", quickxor="h1")
    delivered = synced(drive)  # first seen in a children listing, with its cTag
    drive.change("f", ctag=None, etag="e-other")  # then in a Business delta page: no cTag
    assert plan(drive, delivered=delivered).actions == ()


def test_without_ctag_a_changed_hash_means_changed_content(drive: Drive) -> None:
    drive.file("f", "a.pdf", ctag="c1", quickxor="h1")
    delivered = synced(drive)
    drive.change("f", ctag=None, quickxor="h2")
    assert only(plan(drive, delivered=delivered)).reason_code == "content_changed"


def test_the_ctag_wins_over_the_hash_when_both_sides_have_it() -> None:
    item = RemoteItem(D, "f", "root", "a.pdf", False, size=5, ctag="c1", quickxor="h-new")
    record = DeliveredFile(D, "f", "k", "c1", "h-old", 5, "", (), "a.pdf")
    assert not content_changed(item, record)
    assert content_changed(replace(item, ctag="c2", quickxor="h-old"), record)


@pytest.mark.parametrize(
    ("item_tags", "record_tags", "sizes", "changed"),
    [
        ((None, None), (None, None), (5, 5), False),  # nothing but size: equal is unchanged
        ((None, None), (None, None), (5, 6), True),
        (("c1", None), (None, "h1"), (5, 5), False),  # nothing comparable on both sides
        (("c1", None), (None, "h1"), (5, 7), True),
        ((None, "h1"), ("c1", "h1"), (5, 9), False),  # the hash decides, not the size
        (("c1", "h1"), ("c1", "h1"), (5, 9), False),  # the cTag decides, not the size
    ],
)
def test_size_decides_only_when_nothing_better_is_on_both_sides(
    item_tags: tuple[str | None, str | None],
    record_tags: tuple[str | None, str | None],
    sizes: tuple[int, int],
    changed: bool,
) -> None:
    item = RemoteItem(D, "f", "root", "a.pdf", False, size=sizes[0], ctag=item_tags[0],
                      quickxor=item_tags[1])  # fmt: skip
    record = DeliveredFile(D, "f", "k", record_tags[0], record_tags[1], sizes[1], "", (), "a.pdf")
    assert content_changed(item, record) is changed


def test_an_etag_change_alone_does_nothing(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    delivered = synced(drive)
    drive.change("f", etag="another-etag")
    assert plan(drive, delivered=delivered).actions == ()


# --- relocations and registrations -------------------------------------------------------------


def test_a_rename_is_a_relocation_without_bytes(drive: Drive) -> None:
    drive.file("f", "old.pdf")
    delivered = synced(drive)
    drive.change("f", name="new.pdf", etag="e2")
    result = plan(drive, delivered=delivered)
    action = only(result)
    assert (action.kind, action.reason_code) == (RELOCATE, "moved")
    assert (action.previous_key, action.storage_key) == (f"{Y}/old.pdf", f"{Y}/new.pdf")
    assert result.bytes_to_move == 0


def test_a_move_to_another_folder_is_a_relocation(drive: Drive) -> None:
    ship(drive)
    delivered = synced(drive)
    drive.change("manual", parent_id="gens")
    action = only(plan(drive, delivered=delivered))
    assert action.kind is RELOCATE
    assert action.previous_key == f"{Y}/Yacht Docs/02_ENGINEERING/Main Engines/manual.pdf"
    assert action.storage_key == f"{Y}/Yacht Docs/02_ENGINEERING/Generators/manual.pdf"
    assert action.folder_path == ("Yacht Docs", "02_ENGINEERING", "Generators")


def test_renaming_a_folder_relocates_every_file_below_it(drive: Drive) -> None:
    ship(drive)
    delivered = synced(drive)
    drive.change("eng", name="03_ENGINEERING")
    result = plan(drive, delivered=delivered)
    assert sorted(summary(result)) == [("relocate", "gen", "moved"), ("relocate", "manual", "moved")]


def test_a_rename_with_changed_content_uploads_and_names_the_previous_key(drive: Drive) -> None:
    drive.file("f", "old.pdf", ctag="c1")
    delivered = synced(drive)
    drive.change("f", name="new.pdf", ctag="c2")
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason_code) == (UPLOAD, "content_changed")
    assert (action.previous_key, action.storage_key) == (f"{Y}/old.pdf", f"{Y}/new.pdf")


def test_a_file_in_storage_but_not_registered_is_registered(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    delivered = drive.deliver(plan(drive).actions, registered=False)
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason_code, action.storage_key) == (
        REGISTER,
        "unregistered",
        f"{Y}/a.pdf",
    )


def test_an_unregistered_file_that_moved_is_relocated_which_registers_it(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    delivered = drive.deliver(plan(drive).actions, registered=False)
    drive.change("f", name="b.pdf")
    assert only(plan(drive, delivered=delivered)).kind is RELOCATE


def test_an_unchanged_synced_drive_plans_nothing(drive: Drive) -> None:
    ship(drive)
    assert plan(drive, delivered=synced(drive)).actions == ()


# --- deletions ---------------------------------------------------------------------------------


def test_a_file_gone_from_the_drive_is_deleted(drive: Drive) -> None:
    drive.file("f", "a.pdf", size=77)
    delivered = synced(drive)
    del drive.items["f"]
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason_code) == (DELETE, "deleted_upstream")
    assert (action.storage_key, action.name, action.size) == (f"{Y}/a.pdf", "a.pdf", 77)


def test_a_deleted_folder_deletes_every_delivered_file_below_it(drive: Drive) -> None:
    from celeste_desktop.domain.models import RemoteDeletion
    from celeste_desktop.engine.index import apply_changes

    ship(drive)
    delivered = synced(drive)
    drive.items = apply_changes(drive.items, [RemoteDeletion(D, "eng")])
    assert sorted(summary(plan(drive, delivered=delivered))) == [
        ("delete", "gen", "deleted_upstream"),
        ("delete", "manual", "deleted_upstream"),
    ]


def test_a_file_replaced_by_a_folder_of_the_same_id_is_deleted(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    delivered = synced(drive)
    drive.items["f"] = RemoteItem(D, "f", "root", "a", True)
    assert only(plan(drive, delivered=delivered)).reason_code == "deleted_upstream"


def test_unselecting_a_folder_deletes_its_files(drive: Drive) -> None:
    ship(drive)
    delivered = synced(drive, [tick("eng")])
    result = plan(drive, [tick("eng"), tick("gens", included=False)], delivered)
    action = only(result)
    assert (action.kind, action.item_id, action.reason_code) == (DELETE, "gen", "unselected")
    assert action.storage_key == delivered["gen"].storage_key


def test_a_file_moved_out_of_the_selection_is_deleted(drive: Drive) -> None:
    ship(drive)
    delivered = synced(drive, [tick("eng")])
    drive.change("gen", parent_id="root")
    assert summary(plan(drive, [tick("eng")], delivered)) == [("delete", "gen", "unselected")]


def test_a_delivered_file_that_is_now_skipped_is_deleted_with_the_skip_code(drive: Drive) -> None:
    drive.file("f", "report.docx")
    delivered = synced(drive)
    drive.change("f", name="~$report.docx")
    action = only(plan(drive, delivered=delivered))
    assert (action.kind, action.reason_code) == (DELETE, SkipCode.HIDDEN.value)
    assert "lock file" in action.reason


def test_files_already_marked_deleted_are_never_deleted_again(drive: Drive) -> None:
    ship(drive)
    delivered = synced(drive, [tick("eng")])
    delivered = {item_id: replace(record, deleted=True) for item_id, record in delivered.items()}
    del drive.items["manual"]  # gone upstream
    drive.change("gen", name="~$gen.pdf")  # now skipped
    result = plan(drive, [tick("docs", included=False)], delivered)  # and unselected
    assert result.actions == ()


# --- skips -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "package_type", "malware", "code"),
    [
        ("Notebook", "oneNote", False, SkipCode.ONENOTE),
        ("Bundle", "bundle", False, SkipCode.PACKAGE),
        ("evil.exe", None, True, SkipCode.MALWARE),
        ("~$lock.docx", None, False, SkipCode.HIDDEN),
        (".hidden.pdf", None, False, SkipCode.HIDDEN),
        ("draft.tmp", None, False, SkipCode.TEMPORARY),
        ("Thumbs.db", None, False, SkipCode.SYSTEM_FILE),
        ("desktop.ini", None, False, SkipCode.SYSTEM_FILE),
    ],
)
def test_files_the_rules_reject_are_skipped_visibly(
    drive: Drive, name: str, package_type: str | None, malware: bool, code: SkipCode
) -> None:
    drive.file("f", name, package_type=package_type, malware=malware)
    action = only(plan(drive))
    assert (action.kind, action.reason_code) == (SKIP, code.value)
    assert action.reason  # a message a person can act on
    assert action.storage_key == ""


def test_everything_below_a_system_folder_is_skipped(drive: Drive) -> None:
    drive.folder("nas", "@eaDir")
    drive.folder("thumbs", "photo.jpg", "nas")
    drive.file("a", "SYNOFILE_THUMB_XL.jpg", "thumbs")
    drive.file("b", "c.pdf", "nas")
    result = plan(drive)
    assert sorted(summary(result)) == [("skip", "a", "system_folder"), ("skip", "b", "system_folder")]


def test_folders_themselves_plan_nothing(drive: Drive) -> None:
    drive.folder("a", "A")
    drive.folder("b", "@eaDir", "a")
    assert plan(drive).actions == ()


def test_max_file_size_skips_larger_files(drive: Drive) -> None:
    drive.file("big", "big.mp4", size=2001)
    drive.file("fits", "fits.mp4", size=2000)
    result = plan(drive, max_file_size=2000)
    assert summary(result) == [("skip", "big", "too_large"), ("upload", "fits", "new")]


def test_the_patterns_given_are_the_ones_applied(drive: Drive) -> None:
    drive.file("f", "a.pdf")
    drive.file("g", "b.bak")
    patterns = SkipPatterns(temporary_extensions=frozenset({".pdf"}))
    assert sorted(summary(plan(drive, patterns=patterns))) == [
        ("skip", "f", "temporary"),
        ("upload", "g", "new"),
    ]


def test_too_long_paths_are_skipped(drive: Drive) -> None:
    drive.folder("long", "x" * 300)
    drive.file("f", "y" * 120 + ".pdf", "long")
    assert only(plan(drive)).reason_code == "path_too_long"


def test_unselected_files_are_not_even_skipped(drive: Drive) -> None:
    drive.folder("a", "A")
    drive.file("f", "Thumbs.db", "a")
    drive.file("g", "plain.pdf", "a")
    assert plan(drive, [tick("a", included=False)]).actions == ()


def test_orphans_wait_for_their_parent_and_are_not_deleted(drive: Drive) -> None:
    drive.folder("a", "A")
    drive.file("f", "a.pdf", "a")
    delivered = synced(drive)
    drive.change("f", parent_id="folder-not-listed-yet")
    drive.file("g", "b.pdf", "folder-not-listed-yet")
    result = plan(drive, delivered=delivered)
    assert sorted(summary(result)) == [
        ("skip", "f", "unresolved_path"),
        ("skip", "g", "unresolved_path"),
    ]
    assert all(action.reason == "waiting for the parent folder to be listed" for action in result.actions)
    assert result.of(SKIP)[0].storage_key == delivered["f"].storage_key  # still held there


def test_orphans_below_an_excluded_folder_are_not_reported(drive: Drive) -> None:
    drive.folder("x", "X", "not-listed")
    drive.file("f", "a.pdf", "x")
    assert plan(drive, [tick("x", included=False)]).actions == ()
    assert only(plan(drive, [tick("x", urgent=True)])).urgent


# --- order -------------------------------------------------------------------------------------


def test_urgent_first_then_cheap_actions_then_uploads_smallest_first(drive: Drive) -> None:
    drive.folder("urgent", "Urgent")
    drive.folder("normal", "Normal")
    drive.file("u-big", "big.pdf", "urgent", size=900)
    drive.file("u-small", "small.pdf", "urgent", size=10)
    drive.file("moved", "moved.pdf", "normal", size=5000)
    drive.file("gone", "gone.pdf", "normal")
    drive.file("unreg", "unreg.pdf", "normal")
    drive.file("lock", "~$x.docx", "normal")
    selection = [tick("urgent", urgent=True), tick("normal")]
    delivered = drive.deliver(plan(drive, selection).of(UPLOAD))
    delivered["unreg"] = replace(delivered["unreg"], registered=False)
    del drive.items["gone"]
    drive.change("moved", name="renamed.pdf")
    drive.file("n-b", "b.pdf", "normal", size=50)
    drive.file("n-a", "a.pdf", "normal", size=50)
    drive.file("n-small", "z.pdf", "normal", size=1)
    drive.file("u-new", "new.pdf", "urgent", size=10_000)
    drive.file("u-lock", "~$u.docx", "urgent")
    result = plan(drive, selection, delivered)
    assert summary(result) == [
        ("skip", "u-lock", "hidden"),
        ("upload", "u-new", "new"),
        ("delete", "gone", "deleted_upstream"),
        ("relocate", "moved", "moved"),
        ("register", "unreg", "unregistered"),
        ("skip", "lock", "hidden"),
        ("upload", "n-small", "new"),
        ("upload", "n-a", "new"),  # equal sizes: by path
        ("upload", "n-b", "new"),
    ]


def test_the_plan_does_not_depend_on_the_order_of_the_index(drive: Drive) -> None:
    ship(drive)
    rnd = random.Random(7)
    for index in range(30):  # with clashing names too, so key_busy choices are covered
        drive.file(f"f{index}", f"{index % 7}.pdf", rnd.choice(["main", "gens", "docs"]), size=index % 4)
    expected = plan(drive)
    assert expected.of(SKIP)
    shuffled = list(drive.items.items())
    rnd.shuffle(shuffled)
    drive.items = dict(shuffled)
    assert plan(drive) == expected


def test_a_file_renamed_onto_the_name_of_a_deleted_one_waits_for_the_delete(drive: Drive) -> None:
    drive.file("old", "a.pdf")
    drive.file("new", "b.pdf")
    selection = [tick("root", urgent=True)]
    delivered = synced(drive, selection)
    del drive.items["old"]
    drive.change("new", name="a.pdf")
    result = plan(drive, selection, delivered)
    # The urgent relocation pulls the (not urgent) delete of the key it needs ahead of it.
    assert summary(result) == [("delete", "old", "deleted_upstream"), ("relocate", "new", "moved")]
    assert dependencies(result) == {1: 0}


def test_a_key_freed_by_a_rename_with_new_content_is_written_after_it(drive: Drive) -> None:
    drive.file("edited", "a.pdf", ctag="c1", size=10**6)
    drive.file("renamed", "b.pdf")
    delivered = synced(drive)
    drive.change("edited", name="c.pdf", ctag="c2")  # frees a.pdf only once uploaded
    drive.change("renamed", name="a.pdf")
    result = plan(drive, delivered=delivered)
    assert summary(result) == [("upload", "edited", "content_changed"), ("relocate", "renamed", "moved")]
    assert result.actions[0].previous_key == f"{Y}/a.pdf"
    assert dependencies(result) == {1: 0}


def test_swapped_names_go_through_a_staging_key_without_bytes(drive: Drive) -> None:
    drive.file("x", "a.pdf")
    drive.file("y", "b.pdf")
    delivered = synced(drive)
    drive.change("x", name="b.pdf")
    drive.change("y", name="a.pdf")
    result = plan(drive, delivered=delivered)
    parked = staging_key(Y, "x")
    moves = [(a.item_id, a.previous_key, a.storage_key, a.reason_code) for a in result.actions]
    assert moves == [
        ("x", f"{Y}/a.pdf", parked, "staging"),
        ("y", f"{Y}/b.pdf", f"{Y}/a.pdf", "moved"),
        ("x", parked, f"{Y}/b.pdf", "moved"),
    ]
    assert result.bytes_to_move == 0
    assert dependencies(result) == {1: 0, 2: 1}


def test_a_rotation_of_three_names_also_stages_one_file(drive: Drive) -> None:
    for item_id, name in (("x", "a.pdf"), ("y", "b.pdf"), ("z", "c.pdf")):
        drive.file(item_id, name)
    delivered = synced(drive)
    for item_id, name in (("x", "b.pdf"), ("y", "c.pdf"), ("z", "a.pdf")):
        drive.change(item_id, name=name)
    result = plan(drive, delivered=delivered)
    assert [a.kind for a in result.actions] == [RELOCATE] * 4
    assert [a.reason_code for a in result.actions].count("staging") == 1
    assert _replay(result, delivered) == {"x": f"{Y}/b.pdf", "y": f"{Y}/c.pdf", "z": f"{Y}/a.pdf"}


def test_a_key_still_held_by_an_unresolved_file_is_not_overwritten(drive: Drive) -> None:
    drive.folder("a", "A")
    drive.file("f", "x.pdf", "a")
    delivered = synced(drive)
    drive.change("f", parent_id="not-listed-yet")
    drive.file("g", "x.pdf", "a")  # a new file under the old name
    result = plan(drive, delivered=delivered)
    assert sorted(summary(result)) == [("skip", "f", "unresolved_path"), ("skip", "g", "key_busy")]


def test_two_files_with_one_key_upload_only_one(drive: Drive) -> None:
    # OneDrive allows no such pair; a stale index could. The file holding the key keeps it.
    drive.file("f", "x.pdf")
    delivered = synced(drive)
    drive.file("g", "x.pdf")
    assert summary(plan(drive, delivered=delivered)) == [("skip", "g", "key_busy")]
    assert summary(plan(drive)) == [("skip", "g", "key_busy"), ("upload", "f", "new")]


def _replay(result: Plan, delivered: Mapping[str, DeliveredFile]) -> dict[str, str]:
    """Storage after running ``result`` in order; fails if a live key is ever overwritten."""
    owner = {record.storage_key: item_id for item_id, record in delivered.items()}
    for action in result.actions:
        if action.previous_key is not None:
            assert owner.pop(action.previous_key) == action.item_id
        assert owner.get(action.storage_key, action.item_id) == action.item_id, action
        owner[action.storage_key] = action.item_id
    return {item_id: key for key, item_id in owner.items()}


# --- keys, configuration, scale ----------------------------------------------------------------


def test_keys_match_storage_key_for_odd_and_very_long_paths(drive: Drive) -> None:
    parent = "root"
    names = ["Ωmega Ø", "x" * 190, "#1 [draft]", "y" * 190, "z" * 190, "Ünïcödé", "w" * 190]
    for index, name in enumerate(names):
        drive.folder(f"d{index}", name, parent)
        parent = f"d{index}"
        drive.file(f"f{index}", f"Café #{index}.pdf", parent)
    patterns = SkipPatterns(max_path_chars=None)
    result = plan(drive, patterns=patterns)
    assert len(result.actions) == len(names)
    assert any(len(action.storage_key) > 800 for action in result.actions)
    for action in result.actions:
        assert action.storage_key == storage_key(Y, action.folder_path, action.name)
        assert len(action.storage_key) <= MAX_KEY_LENGTH


def test_an_invalid_yacht_id_is_a_config_error(drive: Drive) -> None:
    with pytest.raises(ConfigError):
        plan_sync(yacht_id="bad/id", items=drive.items, selection=[], delivered={})


def test_a_hundred_thousand_files_plan_quickly(drive: Drive) -> None:
    for top in range(10):
        drive.folder(f"t{top}", f"0{top}_ENGINEERING")
        for sub in range(100):
            folder_id = f"t{top}s{sub}"
            drive.folder(folder_id, f"Système {sub}", f"t{top}")
            for leaf in range(100):
                drive.file(f"{folder_id}f{leaf}", f"Document {leaf}.pdf", folder_id, size=leaf)
    started = time.perf_counter()
    first = plan(drive)
    planned = time.perf_counter()
    delivered = drive.deliver(first.actions)
    planned_again = time.perf_counter()
    again = plan(drive, delivered=delivered)
    replanned = time.perf_counter()
    assert len(first.actions) == 100_000 and again.actions == ()
    print(f"first plan {planned - started:.2f} s, steady plan {replanned - planned_again:.2f} s")
    assert replanned - started < 60  # a loose bound against quadratic blow-ups, not a benchmark
