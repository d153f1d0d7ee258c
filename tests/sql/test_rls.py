"""Row-level security of our migrations on a real PostgreSQL, request by request.

A yacht key (role authenticated with a `yacht_id` claim) must reach its own yacht's rows and
`documents/{yacht_id}/...` objects only; anon nothing; service_role everything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from psycopg import errors

from .api import (
    PIPELINE_TABLES,
    STATUS_TABLES,
    Conn,
    add_connection,
    add_connection_with,
    add_state,
    as_request,
    key_claims,
    rls_refused,
    upload,
    upsert_doc,
    upsert_search,
)

pytestmark = pytest.mark.postgres


# onedrive_* status tables ------------------------------------------------------------------------


def test_yacht_key_upserts_its_connection_and_gets_the_same_row_back(db: Conn) -> None:
    yacht = uuid.uuid4()
    first = add_connection(db, yacht)
    second = add_connection(db, yacht)
    assert first == second
    with as_request(db, "authenticated", key_claims(yacht)):
        db.execute(
            "update onedrive_connections set selected_folders = %s, last_sync_at = now() where id = %s",
            ['[{"drive_id": "d", "item_id": "i", "path": "/02_ENGINEERING"}]', first],
        )
        row = db.execute(
            "select selected_folders, sync_enabled, updated_at > created_at from onedrive_connections"
        ).fetchall()
    assert row == [([{"drive_id": "d", "item_id": "i", "path": "/02_ENGINEERING"}], True, True)]


def test_yacht_key_tracks_files_per_drive_and_item(db: Conn) -> None:
    yacht = uuid.uuid4()
    connection_id = add_connection(db, yacht)
    first = add_state(db, yacht, connection_id, "item-1")
    again = add_state(db, yacht, connection_id, "item-1", status="completed")
    assert first == again
    with as_request(db, "authenticated", key_claims(yacht)):
        db.execute(
            "insert into onedrive_sync_state (connection_id, yacht_id, onedrive_drive_id, "
            "onedrive_item_id) values (%s, %s, 'drive-2', 'item-1')",
            [connection_id, yacht],
        )
        rows = db.execute(
            "select onedrive_drive_id, sync_status from onedrive_sync_state order by 1"
        ).fetchall()
    assert rows == [("drive-1", "completed"), ("drive-2", "pending")]


def test_sync_status_and_job_status_are_checked(db: Conn) -> None:
    yacht = uuid.uuid4()
    connection_id = add_connection(db, yacht)
    with pytest.raises(errors.CheckViolation):
        add_state(db, yacht, connection_id, "item-x", status="done")
    with pytest.raises(errors.CheckViolation), as_request(db, "authenticated", key_claims(yacht)):
        db.execute(
            "insert into onedrive_sync_jobs (id, connection_id, yacht_id, job_status) "
            "values (gen_random_uuid(), %s, %s, 'finished')",
            [connection_id, yacht],
        )


def test_a_retried_job_report_lands_once(db: Conn) -> None:
    yacht = uuid.uuid4()
    connection_id = add_connection(db, yacht)
    job_id = uuid.uuid4()
    for status, succeeded in (("running", 0), ("running", 0), ("partial", 7)):
        with as_request(db, "authenticated", key_claims(yacht)):
            db.execute(
                "insert into onedrive_sync_jobs (id, connection_id, yacht_id, job_status, "
                "files_succeeded, bytes_uploaded) values (%s, %s, %s, %s, %s, 1024) "
                "on conflict (id) do update set job_status = excluded.job_status, "
                "files_succeeded = excluded.files_succeeded",
                [job_id, connection_id, yacht, status, succeeded],
            )
    with as_request(db, "authenticated", key_claims(yacht)):
        rows = db.execute("select id, job_status, files_succeeded from onedrive_sync_jobs").fetchall()
    assert rows == [(job_id, "partial", 7)]


def test_yacht_key_cannot_write_or_see_another_yachts_status_rows(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    conn_a = add_connection(db, yacht_a)
    conn_b = add_connection(db, yacht_b)
    add_state(db, yacht_b, conn_b, "item-b")

    with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
        db, "authenticated", key_claims(yacht_a)
    ):
        db.execute(
            "insert into onedrive_connections (yacht_id, user_principal_name) values (%s, 'x')",
            [yacht_b],
        )
    assert rls_refused(refused)

    with as_request(db, "authenticated", key_claims(yacht_a)):
        assert db.execute("select count(*) from onedrive_sync_state").fetchone() == (0,)
        assert db.execute("select id from onedrive_connections").fetchall() == [(conn_a,)]
        touched = db.execute(
            "update onedrive_connections set sync_enabled = false where id = %s", [conn_b]
        )
        assert touched.rowcount == 0
    # moving one's own row to another yacht is refused (no WHERE: only UPDATE's WITH CHECK
    # stands in the way, as SELECT policies apply to new rows only when columns are read)
    for where in ("", " where id = %s"):
        with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
            db, "authenticated", key_claims(yacht_a)
        ):
            db.execute(
                "update onedrive_connections set yacht_id = %s" + where,
                [yacht_b, conn_a][: 1 + bool(where)],
            )
        assert rls_refused(refused)
    # upsert that meets yacht B's row: refused, not silently merged
    with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
        db, "authenticated", key_claims(yacht_a)
    ):
        db.execute(
            "insert into onedrive_sync_state (connection_id, yacht_id, onedrive_drive_id, "
            "onedrive_item_id) values (%s, %s, 'drive-1', 'item-b') "
            "on conflict (connection_id, onedrive_drive_id, onedrive_item_id) "
            "do update set sync_status = 'failed'",
            [conn_b, yacht_b],
        )
    assert rls_refused(refused)
    status = db.execute("select sync_status from onedrive_sync_state where connection_id = %s", [conn_b])
    assert status.fetchone() == ("pending",)


def test_a_row_cannot_hang_under_another_yachts_connection(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    conn_b = add_connection(db, yacht_b)
    with pytest.raises(errors.ForeignKeyViolation):
        add_state(db, yacht_a, conn_b, "item-1")
    with pytest.raises(errors.ForeignKeyViolation), as_request(
        db, "authenticated", key_claims(yacht_a)
    ):
        db.execute(
            "insert into onedrive_sync_jobs (id, connection_id, yacht_id) values (%s, %s, %s)",
            [uuid.uuid4(), conn_b, yacht_a],
        )


@pytest.mark.parametrize("table", STATUS_TABLES)
def test_yacht_key_may_not_delete(db: Conn, table: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), as_request(
        db, "authenticated", key_claims(uuid.uuid4())
    ):
        db.execute(f"delete from {table}")


# doc_metadata and search_index (the pipeline's tables) -----------------------------------------


def test_a_renamed_document_updates_its_one_row(db: Conn) -> None:
    yacht = uuid.uuid4()
    source_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{yacht}/drive/item"))
    first = upsert_doc(db, yacht, source_id, f"{yacht}/02_ENGINEERING/old name.pdf")
    second = upsert_doc(db, yacht, source_id, f"{yacht}/02_ENGINEERING/new name.pdf")
    assert first == second
    with as_request(db, "authenticated", key_claims(yacht)):
        db.execute("update doc_metadata set deleted_at = now() where id = %s", [first])
        rows = db.execute(
            "select filename, storage_path, deleted_at is not null from doc_metadata"
        ).fetchall()
    assert rows == [("new name.pdf", f"{yacht}/02_ENGINEERING/new name.pdf", True)]


def test_rows_without_source_id_never_collide(db: Conn) -> None:
    """Rows the NAS agent wrote before this migration have source_id NULL: all are kept."""
    yacht = uuid.uuid4()
    for _ in range(2):
        db.execute(
            "insert into doc_metadata (yacht_id, source, filename, storage_path) "
            "values (%s, 'nas', 'a.pdf', %s)",
            [yacht, f"{yacht}/a.pdf"],
        )
    assert db.execute("select count(*) from doc_metadata where yacht_id = %s", [yacht]).fetchone() == (2,)


def test_doc_metadata_is_yacht_scoped_and_paths_stay_under_the_yacht(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    upsert_doc(db, yacht_b, "b-doc", f"{yacht_b}/b.pdf")
    with as_request(db, "authenticated", key_claims(yacht_a)):
        assert db.execute("select count(*) from doc_metadata").fetchone() == (0,)
        assert db.execute("update doc_metadata set doc_type = 'x'").rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upsert_doc(db, yacht_a, "a-doc", f"{yacht_b}/stolen.pdf")
    assert rls_refused(refused)
    with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
        db, "authenticated", key_claims(yacht_a)
    ):
        db.execute(
            "insert into doc_metadata (yacht_id, source, filename, storage_path) "
            "values (%s, 'onedrive', 'b.pdf', %s)",
            [yacht_b, f"{yacht_b}/b.pdf"],
        )
    assert rls_refused(refused)
    doc = upsert_doc(db, yacht_a, "a-doc", f"{yacht_a}/a.pdf")
    with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
        db, "authenticated", key_claims(yacht_a)
    ):
        db.execute("update doc_metadata set storage_path = %s where id = %s", [f"{yacht_b}/b.pdf", doc])
    assert rls_refused(refused)


def test_search_index_upsert_and_its_fleet_wide_unique_key(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    object_a = uuid.uuid5(uuid.NAMESPACE_URL, f"{yacht_a}/drive/item")
    upsert_search(db, yacht_a, object_a, f"{yacht_a}/manual.pdf")
    upsert_search(db, yacht_a, object_a, f"{yacht_a}/renamed.pdf")
    with as_request(db, "authenticated", key_claims(yacht_a)):
        rows = db.execute("select object_id, payload ->> 'storage_path' from search_index").fetchall()
    assert rows == [(object_a, f"{yacht_a}/renamed.pdf")]

    # yacht B meeting A's object_id: an error, never an overwrite
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upsert_search(db, yacht_b, object_a, f"{yacht_b}/manual.pdf")
    assert rls_refused(refused)
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upsert_search(db, yacht_b, uuid.uuid4(), f"{yacht_b}/x.pdf", org=yacht_a)
    assert rls_refused(refused)
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upsert_search(db, yacht_b, uuid.uuid4(), f"{yacht_a}/manual.pdf")
    assert rls_refused(refused)
    with as_request(db, "authenticated", key_claims(yacht_b)):
        assert db.execute("select count(*) from search_index").fetchone() == (0,)


# storage.objects ---------------------------------------------------------------------------------


def test_yacht_key_uploads_and_replaces_under_its_own_prefix(db: Conn) -> None:
    yacht = uuid.uuid4()
    name = f"{yacht}/02_ENGINEERING/Main Engine/manual (rev 2).pdf"
    upload(db, yacht, "documents", name)
    upload(db, yacht, "documents", name)  # x-upsert: true
    with as_request(db, "authenticated", key_claims(yacht)):
        rows = db.execute("select bucket_id, name, owner from storage.objects").fetchall()
        buckets = db.execute("select id from storage.buckets").fetchall()
    assert rows == [("documents", name, yacht)]
    assert buckets == [("documents",)]


@pytest.mark.parametrize(
    ("bucket", "name_of"),
    [
        ("documents", lambda a, b: f"{b}/manual.pdf"),  # another yacht's prefix
        ("other", lambda a, b: f"{a}/manual.pdf"),  # another bucket
        ("documents", lambda a, b: "manual.pdf"),  # no yacht folder at all
        ("documents", lambda a, b: f"{str(a).upper()}/manual.pdf"),  # not the canonical form
        ("documents", lambda a, b: f"x/{a}/manual.pdf"),  # yacht id not first
    ],
    ids=["other-yacht", "other-bucket", "root", "uppercase", "nested"],
)
def test_uploads_outside_the_yachts_folder_are_refused(
    db: Conn, bucket: str, name_of: Callable[[uuid.UUID, uuid.UUID], str]
) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    for upsert in (False, True):
        with pytest.raises(errors.InsufficientPrivilege) as refused:
            upload(db, yacht_a, bucket, name_of(yacht_a, yacht_b), upsert=upsert)
        assert rls_refused(refused)


def test_yacht_key_cannot_overwrite_or_list_another_yachts_objects(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    upload(db, yacht_b, "documents", f"{yacht_b}/secret.pdf")
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upload(db, yacht_a, "documents", f"{yacht_b}/secret.pdf")
    assert rls_refused(refused)
    with as_request(db, "authenticated", key_claims(yacht_a)):
        assert db.execute("select count(*) from storage.objects").fetchone() == (0,)
        moved = db.execute(
            "update storage.objects set name = %s where name = %s",
            [f"{yacht_a}/secret.pdf", f"{yacht_b}/secret.pdf"],
        )
        assert moved.rowcount == 0


# Who else: anon, keys without a yacht, revoked keys, service_role --------------------------------

INSERTS = {
    "onedrive_connections": "insert into onedrive_connections (yacht_id, user_principal_name) "
    "values (%(y)s, 'x')",
    "onedrive_sync_jobs": "insert into onedrive_sync_jobs (id, connection_id, yacht_id) "
    "values (gen_random_uuid(), gen_random_uuid(), %(y)s)",
    "onedrive_sync_state": "insert into onedrive_sync_state (connection_id, yacht_id, "
    "onedrive_drive_id, onedrive_item_id) values (gen_random_uuid(), %(y)s, 'd', 'i')",
    "doc_metadata": "insert into doc_metadata (yacht_id, source, filename, storage_path) "
    "values (%(y)s, 'onedrive', 'a.pdf', %(y)s::text || '/a.pdf')",
    "search_index": "insert into search_index (object_type, object_id, org_id, yacht_id) "
    "values ('document', gen_random_uuid(), %(y)s, %(y)s)",
    "storage.objects": "insert into storage.objects (bucket_id, name) "
    "values ('documents', %(y)s::text || '/a.pdf')",
}


@pytest.mark.parametrize("table", sorted(INSERTS))
def test_anon_gets_nothing(db: Conn, table: str) -> None:
    yacht = uuid.uuid4()
    upload(db, yacht, "documents", f"{yacht}/seen-by-nobody.pdf")
    upsert_doc(db, yacht, "d", f"{yacht}/d.pdf")
    with pytest.raises(errors.InsufficientPrivilege), as_request(db, "anon", {"role": "anon"}):
        db.execute(INSERTS[table], {"y": yacht})
    with as_request(db, "anon", {"role": "anon", "yacht_id": str(yacht)}):
        if table in STATUS_TABLES:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                db.execute(f"select * from {table}")
        else:
            # anon keeps Supabase's default grants on tables we do not own; RLS hides every row
            count = db.execute(f"select count(*) from {table}").fetchone()
            assert count == (0,)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "authenticated", "sub": str(uuid.uuid4())},  # a web user, no yacht claim
        {"role": "authenticated", "yacht_id": "not-a-uuid"},
        {"role": "authenticated", "yacht_id": ""},
        {"role": "authenticated", "yacht_id": 42},
    ],
    ids=["no-claim", "malformed", "empty", "number"],
)
@pytest.mark.parametrize("table", sorted(INSERTS))
def test_keys_without_a_valid_yacht_claim_are_refused(
    db: Conn, table: str, claims: dict[str, Any]
) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused, as_request(
        db, "authenticated", claims
    ):
        db.execute(INSERTS[table], {"y": uuid.uuid4()})
    assert rls_refused(refused)


def test_a_revoked_key_is_refused_and_its_siblings_are_not(db: Conn) -> None:
    yacht = uuid.uuid4()
    stolen = key_claims(yacht)
    fresh = key_claims(yacht)
    upload(db, yacht, "documents", f"{yacht}/before.pdf", claims=stolen)
    db.execute(
        "insert into celeste_fleet.key_revocations (yacht_id, jti, reason) "
        "values (%s, %s, 'bridge PC stolen')",
        [yacht, stolen["jti"]],
    )
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        upload(db, yacht, "documents", f"{yacht}/after.pdf", claims=stolen)
    assert rls_refused(refused)
    with as_request(db, "authenticated", stolen):
        assert db.execute("select count(*) from storage.objects").fetchone() == (0,)
    upload(db, yacht, "documents", f"{yacht}/after.pdf", claims=fresh)


def test_revoking_every_key_issued_before_an_instant(db: Conn) -> None:
    yacht = uuid.uuid4()
    now = int(time.time())
    old = key_claims(yacht, iat=now - 86_400)
    new = key_claims(yacht, iat=now + 60)
    no_iat = key_claims(yacht)
    del no_iat["iat"]
    db.execute(
        "insert into celeste_fleet.key_revocations (yacht_id, issued_before) values (%s, to_timestamp(%s))",
        [yacht, now],
    )
    for claims in (old, no_iat):
        with pytest.raises(errors.InsufficientPrivilege):
            add_connection_with(db, yacht, claims)
    add_connection_with(db, yacht, new)
    # another yacht's keys are unaffected
    other = uuid.uuid4()
    add_connection_with(db, other, key_claims(other, iat=now - 86_400))


def test_the_revocation_list_and_helper_schema_are_out_of_reach(db: Conn) -> None:
    yacht = uuid.uuid4()
    for role in ("anon", "authenticated"):
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), as_request(
            db, role, key_claims(yacht) if role == "authenticated" else None
        ):
            db.execute(
                "delete from celeste_fleet.key_revocations where yacht_id = %s", [yacht]
            )
    with as_request(db, "authenticated", key_claims(yacht)):
        assert db.execute("select celeste_fleet.current_yacht_id()").fetchone() == (yacht,)


def test_service_role_bypasses_rls(db: Conn) -> None:
    yacht_a, yacht_b = uuid.uuid4(), uuid.uuid4()
    conn_a = add_connection(db, yacht_a)
    upload(db, yacht_b, "documents", f"{yacht_b}/b.pdf")
    with as_request(db, "service_role", {"role": "service_role"}):
        db.execute(
            "insert into onedrive_connections (yacht_id, user_principal_name) values (%s, 'ops')",
            [yacht_b],
        )
        db.execute("insert into storage.objects (bucket_id, name) values ('other', 'anywhere.pdf')")
        assert db.execute(
            "select count(*) from onedrive_connections where yacht_id = any(%s)", [[yacht_a, yacht_b]]
        ).fetchone() == (2,)
        assert db.execute("delete from onedrive_connections where id = %s", [conn_a]).rowcount == 1
        for table in (*STATUS_TABLES, *PIPELINE_TABLES, "storage.objects"):
            db.execute(f"select count(*) from {table}")


