"""Crash recovery at start-up: a damaged or foreign file is moved aside and the state rebuilt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from state_factories import drive, file_item

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import CURRENT_VERSION, StateDB, StateUnavailable, open_state
from celeste_desktop.store.sqlite import damage_reason

GARBAGE = b"this is not a database, it is a shopping list: rope, fenders, coffee\n" * 200


def _assert_rebuilt(state_path: Path, clock: FakeClock, original: bytes) -> Path:
    state = open_state(state_path, now=clock.now)
    try:
        notice = state.recovery
        assert notice is not None
        assert notice.moved_to == state_path.with_name("state.sqlite3.corrupt-20240501T080000Z")
        assert notice.moved_to.read_bytes() == original  # kept for support, byte for byte
        assert "rebuilt" in notice.message and "without re-sending" in notice.message
        assert notice.reason
        # A working, empty, current state.
        assert state.drives() == []
        state.save_drive(drive())
        state.upsert_items("d1", [file_item("a")])
        assert set(state.load_items("d1")) == {"a"}
        assert state.integrity_check() == ["ok"]
    finally:
        state.close()
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (CURRENT_VERSION,)
    return notice.moved_to


def test_a_file_that_is_not_a_database_is_moved_aside(state_path: Path, clock: FakeClock) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(GARBAGE)
    _assert_rebuilt(state_path, clock, GARBAGE)


def test_a_truncated_database_is_moved_aside(state_path: Path, clock: FakeClock) -> None:
    state = open_state(state_path, now=clock.now)
    state.save_drive(drive())
    state.upsert_items("d1", (file_item(f"item-{n}", name=f"document number {n}.pdf") for n in range(5000)))
    state.close()
    full = state_path.read_bytes()
    assert len(full) > 100_000
    with state_path.open("r+b") as handle:
        handle.truncate(len(full) // 2)
    _assert_rebuilt(state_path, clock, full[: len(full) // 2])


def test_sidecars_travel_with_the_damaged_database(state_path: Path, clock: FakeClock) -> None:
    # A -wal left next to a database must never be replayed into the fresh one.
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(GARBAGE)
    sidecars = {suffix: suffix.encode() * 100 for suffix in ("-wal", "-shm")}
    for suffix, content in sidecars.items():
        state_path.with_name(state_path.name + suffix).write_bytes(content)

    moved_to = _assert_rebuilt(state_path, clock, GARBAGE)
    assert moved_to.with_name(moved_to.name + "-wal").read_bytes() == sidecars["-wal"]
    # The -shm is only SQLite's scratch index of the WAL (rebuilt at will): moved, not kept exact.
    assert moved_to.with_name(moved_to.name + "-shm").exists()


def test_a_second_recovery_in_the_same_second_does_not_overwrite_the_first(state_path: Path, clock: FakeClock) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(GARBAGE)
    open_state(state_path, now=clock.now).close()
    state_path.write_bytes(GARBAGE + b"again")
    state = open_state(state_path, now=clock.now)
    state.close()
    assert state.recovery is not None
    assert state.recovery.moved_to.name == "state.sqlite3.corrupt-20240501T080000Z-2"
    assert len(list(state_path.parent.glob("state.sqlite3.corrupt-*"))) == 2


def test_an_empty_file_is_simply_a_new_state(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.touch()
    state = open_state(state_path)
    state.close()
    assert state.recovery is None


def test_a_sound_database_opens_without_notice_and_keeps_its_data(state_path: Path) -> None:
    state = open_state(state_path)
    state.save_drive(drive())
    state.close()
    reopened = open_state(state_path)
    try:
        assert reopened.recovery is None
        assert [d.drive_id for d in reopened.drives()] == ["d1"]
    finally:
        reopened.close()


def test_busy_is_not_mistaken_for_damage(tmp_path: Path) -> None:
    path = tmp_path / "plain.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as busy:
            other.execute("SELECT * FROM t").fetchall()
        assert damage_reason(busy.value) is None
    finally:
        other.close()
        holder.execute("ROLLBACK")
        holder.close()

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(GARBAGE)
    with pytest.raises(sqlite3.DatabaseError) as not_a_database:
        sqlite3.connect(garbage).execute("PRAGMA quick_check").fetchall()
    assert damage_reason(not_a_database.value) is not None


def test_what_a_rebuild_cannot_fix_is_reported_and_nothing_is_moved(state_path: Path) -> None:
    state_path.mkdir(parents=True)  # e.g. a folder where the file should be
    with pytest.raises(StateUnavailable) as refused:
        open_state(state_path)
    assert "cannot be opened" in refused.value.message
    assert refused.value.path == str(state_path)
    assert state_path.is_dir()
    assert not list(state_path.parent.glob("*.corrupt-*"))


def test_connections_use_wal_normal_sync_foreign_keys_and_a_busy_timeout(state: StateDB) -> None:
    with state.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}
