"""Account, drives, selection, the item index and delta cursors: round trips through the state."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError
from state_factories import START, delivered_file, drive, file_item, folder_item

from celeste_desktop.domain.models import Drive, DriveKind, RemoteDeletion, RemoteItem, SelectionEntry
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import DeltaMode, StateDB, StoredAccount


def test_account_round_trip_and_clear(state: StateDB) -> None:
    assert state.account() is None
    state.set_account("officer@yacht.example", "tenant-1", "home.account")
    assert state.account() == StoredAccount("officer@yacht.example", "tenant-1", "home.account")
    state.set_account("captain@yacht.example", "tenant-2")
    assert state.account() == StoredAccount("captain@yacht.example", "tenant-2", None)
    state.clear_account()
    assert state.account() is None


def test_drives_remember_their_delta_mode(state: StateDB) -> None:
    sharepoint = Drive(
        drive_id="d2", name="Engineering", kind=DriveKind.SHAREPOINT, site_id="site-9", web_url="https://sp/eng"
    )
    state.save_drive(drive())
    state.save_drive(sharepoint, DeltaMode.ROOT)
    assert state.drives() == [drive(), sharepoint]
    assert state.delta_mode("d1") is DeltaMode.FOLDER
    assert state.delta_mode("d2") is DeltaMode.ROOT
    assert state.delta_mode("unknown") is DeltaMode.FOLDER

    renamed = Drive(drive_id="d2", name="Engineering Docs", kind=DriveKind.SHAREPOINT)
    state.save_drive(renamed)  # no mode given: the remembered one stays
    assert state.delta_mode("d2") is DeltaMode.ROOT
    assert [d.name for d in state.drives()] == ["Documents", "Engineering Docs"]
    state.set_delta_mode("d2", DeltaMode.FOLDER)
    assert state.delta_mode("d2") is DeltaMode.FOLDER


def test_removing_a_drive_removes_its_index_selection_and_cursors(state: StateDB) -> None:
    state.save_drive(drive())
    state.upsert_items("d1", [folder_item("root", None, is_root=True), file_item("a")])
    state.set_selection("d1", [SelectionEntry("d1", "root", included=True)])
    state.save_delta_page("d1", "", [], delta_link="https://graph/delta?token=1")
    state.mark_delivered(delivered_file("a"))

    state.remove_drive("d1")

    assert state.drives() == []
    assert state.load_items("d1") == {}
    assert state.selection("d1") == []
    assert state.delta_cursor("d1") is None
    assert "a" in state.delivered("d1")  # what is in storage outlives the drive


def test_items_need_their_drive(state: StateDB) -> None:
    with pytest.raises(IntegrityError):
        state.upsert_items("nodrive", [file_item("a", drive_id="nodrive")])


def test_selection_is_replaced_whole_and_urgent_toggles(state: StateDB) -> None:
    state.save_drive(drive())
    state.save_drive(drive("d2"))
    entries = [
        SelectionEntry("d1", "f1", included=True, path="Yacht Docs/02_ENGINEERING"),
        SelectionEntry("d1", "f2", included=False, path="Yacht Docs/02_ENGINEERING/Old"),
    ]
    state.set_selection("d1", entries)
    state.set_selection("d2", [SelectionEntry("d2", "g1", included=True, urgent=True, path="Bridge")])
    assert state.selection("d1") == entries
    assert len(state.selection()) == 3

    assert state.set_urgent("d1", "f1", True)
    assert not state.set_urgent("d1", "missing", True)
    assert state.selection("d1")[0].urgent

    state.set_selection("d1", [SelectionEntry("d1", "f3", included=True)])
    assert [entry.item_id for entry in state.selection("d1")] == ["f3"]
    with pytest.raises(ValueError, match="belongs to drive"):
        state.set_selection("d1", [SelectionEntry("d2", "x", included=True)])


def test_items_round_trip_every_field(state: StateDB) -> None:
    state.save_drive(drive())
    notebook = file_item(
        "nb",
        package_type="oneNote",
        malware=True,
        child_count=3,
        modified=START.astimezone(ZoneInfo("Europe/Paris")),
        quickxor=None,
        etag=None,
    )
    root = folder_item("root", None, is_root=True, child_count=2)
    state.upsert_items("d1", [root, notebook])
    loaded = state.load_items("d1")
    assert loaded == {"root": root, "nb": notebook}
    assert loaded["nb"].modified is not None and loaded["nb"].modified.utcoffset() == timedelta(0)
    assert state.item("d1", "nb") == notebook
    assert state.item("d1", "missing") is None
    assert state.item_count("d1") == 2


def test_upsert_updates_and_the_last_duplicate_wins(state: StateDB) -> None:
    state.save_drive(drive())
    state.upsert_items("d1", [file_item("a", size=1)])
    assert state.upsert_items("d1", [file_item("a", size=2, name="renamed.pdf"), file_item("a", size=3)]) == 2
    assert state.load_items("d1")["a"].size == 3
    with pytest.raises(ValueError, match="belongs to drive"):
        state.upsert_items("d1", [file_item("x", drive_id="d2")])


def test_children_lists_folders_first_then_by_name(state: StateDB) -> None:
    state.save_drive(drive())
    state.upsert_items(
        "d1",
        [
            folder_item("root", None, is_root=True),
            file_item("b", name="beta.pdf"),
            file_item("a", name="Alpha.pdf"),
            folder_item("z", name="Zulu"),
            file_item("deep", parent_id="z"),
        ],
    )
    assert [item.name for item in state.children("d1", "root")] == ["Zulu", "Alpha.pdf", "beta.pdf"]
    assert [item.item_id for item in state.children("d1", "z")] == ["deep"]


def test_deleting_a_folder_deletes_everything_below_it(state: StateDB) -> None:
    state.save_drive(drive())
    state.upsert_items(
        "d1",
        [
            folder_item("root", None, is_root=True),
            folder_item("f"),
            folder_item("g", parent_id="f"),
            file_item("g1", parent_id="g"),
            file_item("f1", parent_id="f"),
            file_item("keep"),
        ],
    )
    assert state.delete_items("d1", ["f", "not-there"]) == 4
    assert set(state.load_items("d1")) == {"root", "keep"}


def test_delta_page_applies_changes_in_order_and_moves_the_cursor(state: StateDB, clock: FakeClock) -> None:
    state.save_drive(drive())
    state.save_delta_page(
        "d1",
        "f",
        [folder_item("f"), file_item("a", parent_id="f"), file_item("b", parent_id="f")],
        next_link="https://graph/delta?page=2",
    )
    cursor = state.delta_cursor("d1", "f")
    assert cursor is not None
    assert (cursor.next_link, cursor.delta_link, cursor.updated_at) == ("https://graph/delta?page=2", None, START)
    assert cursor.resume_link == "https://graph/delta?page=2"

    clock.advance(60)
    # Deleted, then restored within the same page: the restore wins because order is kept.
    state.save_delta_page(
        "d1",
        "f",
        [RemoteDeletion("d1", "a"), file_item("a", parent_id="f", size=9), RemoteDeletion("d1", "b")],
        delta_link="https://graph/delta?token=abc",
    )
    cursor = state.delta_cursor("d1", "f")
    assert cursor is not None
    assert (cursor.next_link, cursor.delta_link) == (None, "https://graph/delta?token=abc")
    assert cursor.updated_at == START + timedelta(seconds=60)
    assert cursor.resume_link == "https://graph/delta?token=abc"
    assert {item_id: item.size for item_id, item in state.load_items("d1").items()} == {"f": 0, "a": 9}

    # A new enumeration in progress keeps the old delta link until its last page.
    state.save_delta_page("d1", "f", [], next_link="https://graph/delta?page=x")
    cursor = state.delta_cursor("d1", "f")
    assert cursor is not None
    assert (cursor.next_link, cursor.delta_link) == ("https://graph/delta?page=x", "https://graph/delta?token=abc")

    state.save_delta_page("d1", "", [], delta_link="https://graph/root-delta")
    assert [c.scope_item_id for c in state.delta_cursors("d1")] == ["", "f"]
    state.reset_delta("d1", "f")
    assert state.delta_cursor("d1", "f") is None
    assert state.delta_cursor("d1", "") is not None
    state.reset_delta("d1")
    assert state.delta_cursors("d1") == []


def test_delta_page_is_all_or_nothing(state: StateDB) -> None:
    state.save_drive(drive())
    state.save_delta_page("d1", "", [file_item("a")], next_link="page-2")
    with pytest.raises(ValueError, match="belongs to drive"):
        state.save_delta_page("d1", "", [file_item("b"), file_item("c", drive_id="other")], next_link="page-3")
    assert set(state.load_items("d1")) == {"a"}
    cursor = state.delta_cursor("d1")
    assert cursor is not None and cursor.next_link == "page-2"
    with pytest.raises(ValueError, match="either"):
        state.save_delta_page("d1", "", [], next_link="x", delta_link="y")


def test_batch_commits_together_or_not_at_all(state: StateDB) -> None:
    state.save_drive(drive())
    with pytest.raises(RuntimeError, match="boom"), state.batch():
        state.upsert_items("d1", [file_item("a")])
        state.set_account("x@y", "t")
        raise RuntimeError("boom")
    assert state.load_items("d1") == {}
    assert state.account() is None

    with state.batch():
        state.upsert_items("d1", [file_item("a")])
        with state.batch():  # nested: joins the outer transaction
            state.set_account("x@y", "t")
        assert state.item("d1", "a") is not None  # reads inside a batch see its writes
    assert state.account() is not None


async def test_a_task_started_inside_a_batch_does_not_reuse_it_afterwards(state: StateDB) -> None:
    async def later() -> None:
        await asyncio.sleep(0)
        state.set_account("late@y", "t")  # runs after the batch closed: its own transaction

    with state.batch():
        state.set_account("x@y", "t")
        task = asyncio.create_task(later())
    await task
    account = state.account()
    assert account is not None and account.upn == "late@y"


async def test_a_batch_cannot_be_handed_to_a_thread(state: StateDB) -> None:
    with state.batch(), pytest.raises(RuntimeError, match="cannot span threads"):
        await asyncio.to_thread(state.account)


def test_items_keep_unicode_names(state: StateDB) -> None:
    state.save_drive(drive())
    item = RemoteItem("d1", "u", "root", "Café #2 — ☃.pdf", False)
    state.upsert_items("d1", [item])
    assert state.load_items("d1")["u"] == item
