"""Loading a drive's index and the delivered files for planning: the same facts as one row at a
time, with what a 100,000-item drive repeats held once, and the manifest read as a stream."""

from __future__ import annotations

from dataclasses import replace

from state_factories import delivered_file, drive, file_item, folder_item

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import StateDB
from celeste_desktop.store.records import ManifestOutcome, ManifestRow


def _tree(state: StateDB) -> None:
    state.save_drive(drive())
    state.upsert_items(
        "d1",
        [
            folder_item("root", None, name="root", is_root=True),
            file_item("a", parent_id="docs"),  # before its folder: the parent id is shared all the same
            folder_item("docs"),
            file_item("b", parent_id="docs", package_type="oneNote", malware=True),
            file_item("c", parent_id="root", mime_type="text/plain"),
        ],
    )


def test_plan_items_keep_what_planning_reads_and_leave_the_rest_empty(state: StateDB) -> None:
    _tree(state)
    full = state.load_items("d1")
    slim = state.load_plan_items("d1")
    assert set(slim) == set(full) == {"root", "docs", "a", "b", "c"}
    for item_id, item in full.items():
        assert slim[item_id] == replace(
            item, etag=None, mime_type=None, modified=None, web_url=None, child_count=None
        ), item_id


def test_items_of_one_folder_share_their_parent_id(state: StateDB) -> None:
    _tree(state)
    for loaded in (state.load_items("d1"), state.load_plan_items("d1")):
        assert loaded["a"].parent_id is loaded["b"].parent_id is loaded["docs"].item_id
        assert loaded["docs"].parent_id is loaded["c"].parent_id is loaded["root"].item_id


def test_load_items_can_load_only_some_items(state: StateDB) -> None:
    _tree(state)
    full = state.load_items("d1")
    assert state.load_items("d1", only=["a", "c", "missing"]) == {"a": full["a"], "c": full["c"]}
    assert state.load_items("d1", only=[]) == {}
    many = [f"x{n}" for n in range(1200)]  # more ids than one IN list takes
    state.upsert_items("d1", [file_item(item_id) for item_id in many])
    assert set(state.load_items("d1", only=[*many, "a"])) == {*many, "a"}


def test_delivered_files_of_one_folder_share_their_path(state: StateDB) -> None:
    state.save_drive(drive())
    for item_id in ("a", "b"):
        state.mark_delivered(delivered_file(item_id, folder_path=("Docs", "Manuals")))
    delivered = state.delivered("d1")
    assert delivered["a"] == delivered_file(
        "a", folder_path=("Docs", "Manuals"), delivered_at=delivered["a"].delivered_at
    )
    assert delivered["a"].folder_path is delivered["b"].folder_path


def test_the_manifest_streams_in_the_order_it_lists(state: StateDB, clock: FakeClock) -> None:
    state.start_job("job-1")
    rows = [
        ManifestRow(
            "d1", f"i{n}", f"Docs/{name}", ManifestOutcome.DELIVERED, clock.now(), size=n, reason="would upload: new"
        )
        for n, name in enumerate(["b.pdf", "a.pdf", "c.pdf"])
    ]
    state.add_manifest_rows("job-1", rows)
    streamed = state.iter_manifest("job-1")
    assert next(streamed).path == "Docs/a.pdf"
    assert [row.path for row in streamed] == ["Docs/b.pdf", "Docs/c.pdf"]
    assert list(state.iter_manifest("job-1")) == state.manifest("job-1") == [rows[1], rows[0], rows[2]]
    assert list(state.iter_manifest("job-2")) == []
