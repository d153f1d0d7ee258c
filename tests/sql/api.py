"""Simulated API requests for the SQL tests: what PostgREST and Storage do per request.

Each `as_request` block is one request: a transaction with `set local role` and
`request.jwt.claims` set as those servers set them; it commits when the block succeeds and
rolls back when it raises.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

Conn = psycopg.Connection[Any]
STATUS_TABLES = ("onedrive_connections", "onedrive_sync_state", "onedrive_sync_jobs")
PIPELINE_TABLES = ("doc_metadata", "search_index")


def key_claims(yacht: uuid.UUID | str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "role": "authenticated",
        "aud": "authenticated",
        "sub": str(yacht),
        "yacht_id": str(yacht),
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(extra)
    return claims


def rls_refused(exc: pytest.ExceptionInfo[errors.InsufficientPrivilege]) -> bool:
    return exc.value.sqlstate == "42501" and "row-level security" in str(exc.value)


def add_connection(conn: Conn, yacht: uuid.UUID, upn: str = "bridge@yacht.example") -> uuid.UUID:
    with as_request(conn, "authenticated", key_claims(yacht)):
        row = conn.execute(
            "insert into onedrive_connections (yacht_id, user_principal_name, tenant_id) "
            "values (%s, %s, 'tenant') "
            "on conflict (yacht_id, user_principal_name) do update set tenant_id = excluded.tenant_id "
            "returning id",
            [yacht, upn],
        ).fetchone()
    assert row is not None
    connection_id: uuid.UUID = row[0]
    return connection_id


def add_state(
    conn: Conn, yacht: uuid.UUID, connection_id: uuid.UUID, item: str, status: str = "pending"
) -> uuid.UUID:
    with as_request(conn, "authenticated", key_claims(yacht)):
        row = conn.execute(
            "insert into onedrive_sync_state (connection_id, yacht_id, onedrive_drive_id, "
            "onedrive_item_id, file_name, sync_status) values (%s, %s, 'drive-1', %s, 'a.pdf', %s) "
            "on conflict (connection_id, onedrive_drive_id, onedrive_item_id) "
            "do update set sync_status = excluded.sync_status returning id",
            [connection_id, yacht, item, status],
        ).fetchone()
    assert row is not None
    state_id: uuid.UUID = row[0]
    return state_id


def upsert_doc(
    conn: Conn, yacht: uuid.UUID, source_id: str, storage_path: str, role: str = "authenticated"
) -> uuid.UUID:
    with as_request(conn, role, key_claims(yacht) if role == "authenticated" else None):
        row = conn.execute(
            "insert into doc_metadata (yacht_id, source, source_id, filename, storage_path, "
            "storage_bucket, doc_type) values (%s, 'onedrive', %s, %s, %s, 'documents', 'manual') "
            "on conflict (yacht_id, source, source_id) do update set "
            "filename = excluded.filename, storage_path = excluded.storage_path returning id",
            [yacht, source_id, storage_path.rsplit("/", 1)[-1], storage_path],
        ).fetchone()
    assert row is not None
    doc_id: uuid.UUID = row[0]
    return doc_id


def upsert_search(
    conn: Conn, yacht: uuid.UUID, object_id: uuid.UUID, storage_path: str, org: uuid.UUID | None = None
) -> None:
    with as_request(conn, "authenticated", key_claims(yacht)):
        conn.execute(
            "insert into search_index (object_type, object_id, org_id, yacht_id, search_text, "
            "payload, embedding_status) values ('document', %s, %s, %s, 'manual', "
            "jsonb_build_object('storage_path', %s::text, 'bucket', 'documents', 'source', 'onedrive'), "
            "'pending_extraction') on conflict (object_type, object_id) do update set "
            "search_text = excluded.search_text, payload = excluded.payload",
            [object_id, org or yacht, yacht, storage_path],
        )


def upload(
    conn: Conn,
    yacht: uuid.UUID,
    bucket: str,
    name: str,
    claims: dict[str, Any] | None = None,
    *,
    upsert: bool = True,
) -> None:
    """The row Storage writes for `POST /object/{bucket}/{name}` (x-upsert: true or false)."""
    statement = (
        "insert into storage.objects (bucket_id, name, owner, owner_id, metadata) "
        "values (%s, %s, auth.uid(), auth.uid()::text, '{\"size\": 1}')"
    )
    if upsert:
        statement += (
            " on conflict (bucket_id, name) do update set metadata = excluded.metadata, "
            "updated_at = now()"
        )
    with as_request(conn, "authenticated", claims or key_claims(yacht)):
        conn.execute(statement, [bucket, name])




def add_connection_with(db: Conn, yacht: uuid.UUID, claims: dict[str, Any]) -> None:
    with as_request(db, "authenticated", claims):
        db.execute(
            "insert into onedrive_connections (yacht_id, user_principal_name) values (%s, %s)",
            [yacht, f"{uuid.uuid4()}@yacht.example"],
        )


@contextmanager
def as_request(conn: Conn, role: str, claims: dict[str, Any] | None = None) -> Iterator[Conn]:
    """One PostgREST/Storage request as ``role`` with these JWT claims."""
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            [json.dumps(claims if claims is not None else {"role": role})],
        )
        yield conn
