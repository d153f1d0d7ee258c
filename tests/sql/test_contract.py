"""The schema contract of our migrations: idempotence, names, upsert targets, no secrets."""

from __future__ import annotations

import uuid

import pytest

from .api import PIPELINE_TABLES, STATUS_TABLES, Conn, as_request, key_claims
from .conftest import REPO, AppliedSchema

pytestmark = pytest.mark.postgres


def test_every_migration_applies_twice_and_the_second_pass_changes_nothing(
    fleet_db: AppliedSchema,
) -> None:
    first, second = fleet_db.messages_by_pass
    for table in PIPELINE_TABLES:
        assert any(m.startswith("WARNING") and f"public.{table}" in m for m in first), first
    assert not [m for m in second if m.startswith("WARNING")], second


def test_migration_files_follow_the_supabase_cli_naming() -> None:
    names = sorted(p.name for p in (REPO / "supabase" / "migrations").glob("*"))
    assert names, "no migrations"
    for name in names:
        stamp, _, rest = name.partition("_")
        assert len(stamp) == 14 and stamp.isdigit() and rest.endswith(".sql"), name


def test_status_tables_hold_no_token_secret_or_key_column(db: Conn) -> None:
    rows = db.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'public' and table_name = any(%s)",
        [list(STATUS_TABLES)],
    ).fetchall()
    assert {r[0] for r in rows} == set(STATUS_TABLES)
    suspicious = [
        f"{table}.{column}"
        for table, column in rows
        if any(word in column for word in ("token", "secret", "key", "password", "credential"))
    ]
    assert suspicious == []


UNIQUE_KEYS: dict[str, list[tuple[str, ...]]] = {
    "onedrive_connections": [("id",), ("yacht_id", "user_principal_name"), ("id", "yacht_id")],
    "onedrive_sync_state": [("id",), ("connection_id", "onedrive_drive_id", "onedrive_item_id")],
    "onedrive_sync_jobs": [("id",)],
    "doc_metadata": [("id",), ("yacht_id", "source", "source_id")],
    "search_index": [("id",), ("object_type", "object_id")],
}


@pytest.mark.parametrize("table", sorted(UNIQUE_KEYS))
def test_upsert_targets_are_plain_unique_indexes(db: Conn, table: str) -> None:
    """PostgREST's on_conflict can only infer a non-partial unique index on exactly those columns."""
    rows = db.execute(
        "select array_agg(a.attname order by k.ord) from pg_index i "
        "cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord) "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = %s::regclass and i.indisunique and i.indpred is null "
        "group by i.indexrelid",
        [f"public.{table}"],
    ).fetchall()
    assert sorted(tuple(r[0]) for r in rows) == sorted(UNIQUE_KEYS[table])


def test_policies_evaluate_the_yacht_once_per_statement(db: Conn) -> None:
    with as_request(db, "authenticated", key_claims(uuid.uuid4())):
        plan = "\n".join(r[0] for r in db.execute("explain select * from onedrive_sync_state"))
    assert "InitPlan" in plan


