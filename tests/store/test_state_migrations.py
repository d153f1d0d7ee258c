"""Schema migrations: a version-1 database upgrades with its data; newer ones are refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection

from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.store import CURRENT_VERSION, DeltaMode, StateTooNew, StateUnavailable, UsageDay, open_state
from celeste_desktop.store import migrations as migrations_module
from celeste_desktop.store.migrations import MIGRATIONS, Migration, migrate
from celeste_desktop.store.schema import metadata
from celeste_desktop.store.sqlite import make_engine

V1_ROWS = (
    "INSERT INTO meta VALUES ('account.upn', 'officer@yacht.example'), ('account.tenant_id', 'tenant-1')",
    "INSERT INTO drives VALUES ('d1', 'Documents', 'business', 'Bridge', NULL, NULL, 'root', "
    "'2024-05-01T08:00:00.000000Z')",
    "INSERT INTO selection VALUES ('d1', 'f1', 1, 1, 'Yacht Docs/02_ENGINEERING')",
    "INSERT INTO items VALUES ('d1', 'a', 'f1', 'manual.pdf', 0, 42, 'e', 'c', 'qx', 'application/pdf', "
    "'2024-04-30T10:00:00.000000Z', 'https://x/a', NULL, 0, 0, NULL)",
    "INSERT INTO delta_cursors VALUES ('d1', 'f1', 'https://graph/next', NULL, '2024-05-01T08:00:00.000000Z')",
    "INSERT INTO files (drive_id, item_id, state, storage_key, ctag, quickxor, size, sha256, folder_path, name, "
    "registered, deleted, delivered_at, attempts, next_attempt_at, last_error, updated_at) VALUES ('d1', 'a', "
    "'failed', 'yacht/manual.pdf', 'c', 'qx', 42, 'ff', '[\"Yacht Docs\", \"02_ENGINEERING\"]', 'manual.pdf', 1, 0, "
    "'2024-05-01T08:00:00.000000Z', 2, '2024-05-01T08:10:00.000000Z', 'HTTP 503', '2024-05-01T08:00:00.000000Z')",
    "INSERT INTO transfers VALUES ('d1', 'b', 'c2', NULL, 9000, '/spool/b', 4096, 0, NULL, 0, NULL, "
    "'2024-05-01T08:00:00.000000Z', '2024-05-01T08:00:00.000000Z')",
    "INSERT INTO jobs (job_id, status, dry_run, started_at, files_found, owner) VALUES ('job-1', 'completed', 0, "
    "'2024-05-01T07:00:00.000000Z', 12, NULL)",
    "INSERT INTO job_files VALUES ('job-1', 'd1', 'a', 'Yacht Docs/manual.pdf', 'delivered', '', 42, 'ff', 'qx', "
    "'yacht/manual.pdf', 'reg-1', '2024-05-01T07:30:00.000000Z')",
    "INSERT INTO outbox (target, payload, conflict, created_at) VALUES ('onedrive_sync_state', '{\"item\": \"a\"}', "
    "'item', '2024-05-01T07:30:00.000000Z')",
    "INSERT INTO problems VALUES ('d1', 'a', 'failed', 'serviceUnavailable', 'HTTP 503', 2, NULL, "
    "'Yacht Docs/manual.pdf', '2024-05-01T08:00:00.000000Z')",
)


def _build_v1(path: Path) -> None:
    engine = make_engine(path)
    try:
        assert migrate(engine, target=1) == 1
        with engine.begin() as conn:
            for statement in V1_ROWS:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_version_1_database_upgrades_with_its_data(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    _build_v1(state_path)
    assert _user_version(state_path) == 1

    state = open_state(state_path)
    try:
        assert state.recovery is None
        assert _user_version(state_path) == CURRENT_VERSION == 2
        account = state.account()
        assert account is not None and account.upn == "officer@yacht.example"
        assert [d.drive_id for d in state.drives()] == ["d1"]
        assert state.delta_mode("d1") is DeltaMode.ROOT
        assert state.selection("d1")[0].urgent
        assert state.load_items("d1")["a"].size == 42
        cursor = state.delta_cursor("d1", "f1")
        assert cursor is not None and cursor.next_link == "https://graph/next"
        delivered = state.delivered("d1")["a"]
        assert delivered.folder_path == ("Yacht Docs", "02_ENGINEERING")
        checkpoint = state.checkpoint("d1", "b")
        assert checkpoint is not None and checkpoint.download_offset == 4096
        job = state.job("job-1")
        assert job is not None and job.status is JobStatus.COMPLETED and job.counters.files_found == 12
        assert state.job_interruptions("job-1") == 0  # the column version 2 added, defaulted
        assert state.manifest("job-1")[0].registration_id == "reg-1"
        assert state.peek_outbox()[0].payload == {"item": "a"}
        assert state.problems()[0].kind is FileProblemKind.FAILED

        # What version 2 brought works on the upgraded file.
        state.add_usage(date(2024, 5, 1), sent=5, received=6)
        assert state.usage_between(date(2024, 5, 1), date(2024, 5, 1)) == [UsageDay(date(2024, 5, 1), 5, 6)]
        with state.engine.connect() as conn:
            indexes = conn.exec_driver_sql("SELECT name FROM sqlite_schema WHERE type = 'index'").scalars().all()
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM files WHERE state = 'failed' AND next_attempt_at <= 'x'"
            ).all()
        assert "files_by_retry" in indexes
        assert "files_by_retry" in str(plan)
        # The retry scheduled under version 1 is still due.
        assert [problem.item_id for problem in state.due_retries(datetime(2024, 5, 1, 9, tzinfo=UTC))] == ["a"]
        assert state.integrity_check() == ["ok"]
    finally:
        state.close()


def test_migrated_schema_matches_the_tables_the_code_queries(state_path: Path) -> None:
    open_state(state_path).close()
    with sqlite3.connect(state_path) as conn:
        tables = {
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
            if not name.startswith("sqlite_")
        }
        assert tables == set(metadata.tables)
        for table in metadata.sorted_tables:
            on_disk = [(row[1], bool(row[5])) for row in conn.execute(f"PRAGMA table_info({table.name})")]
            in_code = [(column.name, column.primary_key) for column in table.columns]
            assert on_disk == in_code, table.name


def test_reopening_a_current_database_changes_nothing(state_path: Path) -> None:
    open_state(state_path).close()
    with sqlite3.connect(state_path) as conn:
        schema_before = conn.execute("SELECT sql FROM sqlite_schema ORDER BY name").fetchall()
    open_state(state_path).close()
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("SELECT sql FROM sqlite_schema ORDER BY name").fetchall() == schema_before


def test_a_database_from_a_newer_version_is_refused_untouched(state_path: Path) -> None:
    open_state(state_path).close()
    with sqlite3.connect(state_path) as conn:
        conn.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    before = state_path.read_bytes()

    with pytest.raises(StateTooNew) as refused:
        open_state(state_path)
    assert "newer version" in refused.value.message
    assert refused.value.title == "Local state is from a newer version"
    assert state_path.read_bytes() == before
    assert not list(state_path.parent.glob("*.corrupt-*"))


def test_a_failing_migration_leaves_the_previous_version_whole(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_path.parent.mkdir(parents=True)
    _build_v1(state_path)

    def half_done(conn: Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE usage (day TEXT PRIMARY KEY)")
        raise OSError("disk full")  # e.g. the disk filled up half way

    monkeypatch.setattr(migrations_module, "MIGRATIONS", (MIGRATIONS[0], Migration(2, "broken", half_done)))
    with pytest.raises(StateUnavailable, match="disk full"):
        open_state(state_path)
    assert _user_version(state_path) == 1
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'usage'").fetchone() == (0,)

    monkeypatch.undo()  # the fixed release upgrades it
    state = open_state(state_path)
    try:
        assert state.load_items("d1")["a"].name == "manual.pdf"
    finally:
        state.close()
