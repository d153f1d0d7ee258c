"""The index at yacht scale: 100,000 items written and read back in a few seconds."""

from __future__ import annotations

import time

from state_factories import drive, file_item, folder_item

from celeste_desktop.store import StateDB


def test_a_hundred_thousand_items_upsert_and_load(state: StateDB) -> None:
    state.save_drive(drive())
    folders = [folder_item(f"folder-{n}") for n in range(1000)]
    files = [file_item(f"item-{n}", parent_id=f"folder-{n % 1000}", size=n) for n in range(99_000)]

    started = time.perf_counter()
    assert state.upsert_items("d1", [*folders, *files]) == 100_000
    written = time.perf_counter()
    loaded = state.load_items("d1")
    read = time.perf_counter()
    state.upsert_items("d1", files[:10_000])  # a second pass updates in place
    updated = time.perf_counter()
    children = state.children("d1", "folder-7")
    listed = time.perf_counter()

    print(
        f"upsert 100k: {written - started:.2f} s, load 100k: {read - written:.2f} s, "
        f"update 10k: {updated - read:.2f} s, children of one folder: {(listed - updated) * 1000:.1f} ms"
    )
    assert len(loaded) == 100_000
    assert loaded["item-12345"] == files[12345]
    assert len(children) == 99
    assert read - started < 20  # loose: slow CI machines must not fail, pathological code must
