"""The simulated PostgREST subset over real TLS sockets: writes, upserts, reads, errors and RLS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import Supa

REPRESENTATION = {"prefer": "return=representation"}
UPSERT = {"prefer": "resolution=merge-duplicates,return=representation"}


def doc(yacht: str, name: str = "manual.pdf", **extra: Any) -> dict[str, Any]:
    return {
        "yacht_id": yacht,
        "source": "onedrive",
        "source_id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "filename": name,
        "storage_path": f"{yacht}/02_ENGINEERING/{name}",
        "storage_bucket": "documents",
        "size_bytes": 1234,
        "metadata": {"original_name": name},
        **extra,
    }


def search_row(yacht: str, object_id: str, text: str = "engine manual") -> dict[str, Any]:
    return {
        "object_type": "document",
        "object_id": object_id,
        "org_id": yacht,
        "yacht_id": yacht,
        "search_text": text,
        "payload": {"storage_path": f"{yacht}/x.pdf"},
        "embedding_status": "pending_extraction",
    }


def test_insert_returns_rows_with_generated_defaults(supa: Supa) -> None:
    client = supa.yacht()
    reply = client.post("/rest/v1/doc_metadata", json=doc(supa.yacht_a), headers=REPRESENTATION)
    assert reply.status_code == 201, reply.text
    [row] = reply.json()
    assert uuid.UUID(row["id"])
    assert row["created_at"].endswith("+00:00") and row["deleted_at"] is None
    assert row["metadata"] == {"original_name": "manual.pdf"}
    assert supa.sim.rows("doc_metadata") == [row]

    minimal = client.post(
        "/rest/v1/doc_metadata",
        json=[doc(supa.yacht_a, "a.pdf"), doc(supa.yacht_a, "b.pdf")],
        headers={"prefer": "return=minimal"},
    )
    assert (minimal.status_code, minimal.content) == (201, b"")
    assert len(supa.sim.rows("doc_metadata")) == 3


def test_upsert_on_conflict_merges_or_ignores(supa: Supa) -> None:
    client = supa.yacht()
    object_id = str(uuid.uuid4())
    url = "/rest/v1/search_index?on_conflict=object_type,object_id"
    first = client.post(url, json=search_row(supa.yacht_a, object_id), headers=UPSERT).json()[0]
    merged = client.post(url, json=search_row(supa.yacht_a, object_id, "new text"), headers=UPSERT)
    assert merged.status_code == 201
    assert merged.json()[0]["id"] == first["id"]
    assert merged.json()[0]["search_text"] == "new text"
    ignored = client.post(
        url,
        json=search_row(supa.yacht_a, object_id, "ignored"),
        headers={"prefer": "resolution=ignore-duplicates,return=representation"},
    )
    assert ignored.json() == []
    assert [r["search_text"] for r in supa.sim.rows("search_index")] == ["new text"]

    plain = client.post("/rest/v1/search_index", json=search_row(supa.yacht_a, object_id), headers=REPRESENTATION)
    assert plain.status_code == 409
    assert plain.json() == {
        "code": "23505",
        "details": f"Key (object_type, object_id)=(document, {object_id}) already exists.",
        "hint": None,
        "message": 'duplicate key value violates unique constraint "search_index_object_type_object_id_key"',
    }
    no_constraint = client.post(
        "/rest/v1/search_index?on_conflict=search_text", json=search_row(supa.yacht_a, object_id), headers=UPSERT
    )
    assert (no_constraint.status_code, no_constraint.json()["code"]) == (400, "42P10")
    twice = client.post(
        url, json=[search_row(supa.yacht_a, object_id), search_row(supa.yacht_a, object_id)], headers=UPSERT
    )
    assert twice.json()["code"] == "21000"
    assert len(supa.sim.rows("search_index")) == 1  # a failed statement changes nothing


def test_schema_errors(supa: Supa) -> None:
    client = supa.yacht()
    unknown_column = client.post("/rest/v1/doc_metadata", json={**doc(supa.yacht_a), "colour": "red"})
    assert unknown_column.status_code == 400
    assert unknown_column.json() == {
        "code": "PGRST204",
        "details": None,
        "hint": None,
        "message": "Could not find the 'colour' column of 'doc_metadata' in the schema cache",
    }
    unknown_table = client.get("/rest/v1/documents")
    assert (unknown_table.status_code, unknown_table.json()["code"]) == (404, "PGRST205")
    missing = client.post("/rest/v1/doc_metadata", json={"yacht_id": supa.yacht_a, "source": "onedrive"})
    assert (missing.status_code, missing.json()["code"]) == (400, "23502")
    bad_uuid = client.post("/rest/v1/doc_metadata", json=doc("not-a-uuid"))
    assert bad_uuid.json()["message"] == 'invalid input syntax for type uuid: "not-a-uuid"'
    mixed = client.post("/rest/v1/doc_metadata", json=[doc(supa.yacht_a), {"filename": "x"}])
    assert mixed.json()["code"] == "PGRST102"
    bad_filter = client.get("/rest/v1/doc_metadata?colour=eq.red")
    assert (bad_filter.status_code, bad_filter.json()["code"]) == (400, "42703")


def test_select_filters_order_and_ranges(supa: Supa) -> None:
    client = supa.yacht()
    for index in range(5):
        client.post("/rest/v1/doc_metadata", json=doc(supa.yacht_a, f"f{index}.pdf", size_bytes=index * 10))
    rows = client.get("/rest/v1/doc_metadata?select=filename,size_bytes&size_bytes=gte.20&order=size_bytes.desc")
    assert rows.json() == [
        {"filename": "f4.pdf", "size_bytes": 40},
        {"filename": "f3.pdf", "size_bytes": 30},
        {"filename": "f2.pdf", "size_bytes": 20},
    ]
    one = client.get("/rest/v1/doc_metadata?filename=eq.f1.pdf&select=filename")
    assert one.json() == [{"filename": "f1.pdf"}]
    ranged = client.get(
        "/rest/v1/doc_metadata?select=filename&order=filename", headers={"range": "1-2", "prefer": "count=exact"}
    )
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == "1-2/5"
    assert [r["filename"] for r in ranged.json()] == ["f1.pdf", "f2.pdf"]
    limited = client.get("/rest/v1/doc_metadata?select=filename&order=filename&limit=2&offset=3")
    assert (limited.headers["content-range"], len(limited.json())) == ("3-4/*", 2)
    single = client.get(
        "/rest/v1/doc_metadata?filename=eq.f1.pdf", headers={"accept": "application/vnd.pgrst.object+json"}
    )
    assert single.json()["filename"] == "f1.pdf"
    none = client.get("/rest/v1/doc_metadata?filename=eq.zz", headers={"accept": "application/vnd.pgrst.object+json"})
    assert (none.status_code, none.json()["code"]) == (406, "PGRST116")
    listed = client.get("/rest/v1/doc_metadata?filename=in.(f1.pdf,f2.pdf)&deleted_at=is.null&select=filename")
    assert sorted(r["filename"] for r in listed.json()) == ["f1.pdf", "f2.pdf"]


def test_patch_with_filters(supa: Supa) -> None:
    client = supa.yacht()
    client.post("/rest/v1/doc_metadata", json=[doc(supa.yacht_a, "a.pdf"), doc(supa.yacht_a, "b.pdf")])
    before = {r["filename"]: r for r in supa.sim.rows("doc_metadata")}
    reply = client.patch(
        "/rest/v1/doc_metadata?filename=eq.a.pdf", json={"deleted_at": "2026-11-25T10:00:00Z"}, headers=REPRESENTATION
    )
    assert reply.status_code == 200
    assert reply.json()[0]["deleted_at"] == "2026-11-25T10:00:00+00:00"
    after = {r["filename"]: r for r in supa.sim.rows("doc_metadata")}
    assert after["b.pdf"] == before["b.pdf"]
    assert client.patch("/rest/v1/doc_metadata?filename=eq.b.pdf", json={"size_bytes": 1}).status_code == 204


def test_row_level_security_mirror(supa: Supa) -> None:
    a, b = supa.yacht(supa.yacht_a), supa.yacht(supa.yacht_b)
    refused = a.post("/rest/v1/doc_metadata", json=doc(supa.yacht_b), headers=REPRESENTATION)
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": 'new row violates row-level security policy for table "doc_metadata"',
    }
    # The policy also pins storage_path to the yacht's own prefix.
    wrong_path = a.post("/rest/v1/doc_metadata", json={**doc(supa.yacht_a), "storage_path": f"{supa.yacht_b}/x.pdf"})
    assert wrong_path.status_code == 403
    anon = supa.client().post("/rest/v1/doc_metadata", json=doc(supa.yacht_a))
    assert (anon.status_code, anon.json()["code"]) == (401, "42501")
    anon_status = supa.client().get("/rest/v1/onedrive_connections")
    assert anon_status.json()["message"] == "permission denied for table onedrive_connections"

    object_id = str(uuid.uuid4())
    assert b.post("/rest/v1/search_index", json=search_row(supa.yacht_b, object_id)).status_code == 201
    assert a.get("/rest/v1/search_index").json() == []  # yacht B's row is invisible to A
    taken = a.post(
        "/rest/v1/search_index?on_conflict=object_type,object_id",
        json=search_row(supa.yacht_a, object_id),
        headers=UPSERT,
    )
    assert taken.status_code == 403
    assert "USING expression" in taken.json()["message"]
    assert (
        a.patch(
            f"/rest/v1/search_index?object_id=eq.{object_id}", json={"search_text": "x"}, headers=REPRESENTATION
        ).json()
        == []
    )
    assert supa.service().get("/rest/v1/search_index").json()[0]["search_text"] == "engine manual"
    assert a.delete("/rest/v1/search_index").json()["code"] == "42501"  # no DELETE grant


def test_representation_needs_the_select_policy(make_supa: Callable[..., Supa]) -> None:
    from dataclasses import replace

    from celeste_desktop.sim.supabase_tables import TABLES

    tables = {**TABLES, "doc_metadata": replace(TABLES["doc_metadata"], yacht_can_select=False)}
    supa = make_supa(tables=tables)
    client = supa.yacht()
    asked = client.post("/rest/v1/doc_metadata", json=doc(supa.yacht_a), headers=REPRESENTATION)
    assert (asked.status_code, asked.json()["code"]) == (403, "42501")
    assert supa.sim.rows("doc_metadata") == []
    assert client.post("/rest/v1/doc_metadata", json=doc(supa.yacht_a)).status_code == 201


def test_status_tables_keys_and_foreign_keys(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa()
    client = supa.yacht()
    connection = {"yacht_id": supa.yacht_a, "user_principal_name": "bridge@yacht.example", "tenant_id": "t"}
    url = "/rest/v1/onedrive_connections?on_conflict=yacht_id,user_principal_name"
    created = client.post(url, json=connection, headers=UPSERT).json()[0]
    again = client.post(url, json={**connection, "app_version": "1.2"}, headers=UPSERT).json()[0]
    assert again["id"] == created["id"] and again["selected_folders"] == []
    assert again["updated_at"] >= created["updated_at"]

    state = {
        "connection_id": created["id"],
        "yacht_id": supa.yacht_a,
        "onedrive_drive_id": "drive-1",
        "onedrive_item_id": "item-1",
        "sync_status": "completed",
    }
    ok = client.post(
        "/rest/v1/onedrive_sync_state?on_conflict=connection_id,onedrive_drive_id,onedrive_item_id",
        json=state,
        headers=UPSERT,
    )
    assert ok.status_code == 201
    orphan = client.post(
        "/rest/v1/onedrive_sync_state", json={**state, "connection_id": str(uuid.uuid4()), "onedrive_item_id": "x"}
    )
    assert (orphan.status_code, orphan.json()["code"]) == (409, "23503")
    bad_status = client.post(
        "/rest/v1/onedrive_sync_state", json={**state, "onedrive_item_id": "y", "sync_status": "lost"}
    )
    assert bad_status.json()["code"] == "23514"
    job_without_id = client.post(
        "/rest/v1/onedrive_sync_jobs", json={"connection_id": created["id"], "yacht_id": supa.yacht_a}
    )
    assert job_without_id.json()["code"] == "23502"  # the app generates job ids
    job = {"id": str(uuid.uuid4()), "connection_id": created["id"], "yacht_id": supa.yacht_a}
    assert client.post("/rest/v1/onedrive_sync_jobs", json=job).status_code == 201

    # Rows survive a restart of the sim; deleting a connection cascades (service role only).
    again_sim = make_supa(data_dir=supa.sim.data_dir)
    assert len(again_sim.sim.rows("onedrive_sync_state")) == 1
    gone = again_sim.service().delete(f"/rest/v1/onedrive_connections?id=eq.{created['id']}")
    assert gone.status_code == 204
    assert again_sim.sim.rows("onedrive_sync_state") == [] and again_sim.sim.rows("onedrive_sync_jobs") == []


def test_expired_bearer_is_pgrst303(supa: Supa) -> None:
    short = supa.sim.mint_yacht_key(supa.yacht_a, lifetime_s=60)
    supa.sim.tokens.expire_all_now(120)
    reply = supa.client(short).get("/rest/v1/doc_metadata")
    assert reply.status_code == 401
    assert reply.json()["code"] == "PGRST303" and reply.json()["message"] == "JWT expired"
    assert "invalid_token" in reply.headers["www-authenticate"]
    assert isinstance(reply, httpx.Response)


def test_a_failed_statement_leaves_no_row_and_no_stale_unique_key(supa: Supa) -> None:
    client = supa.yacht()
    url = "/rest/v1/doc_metadata?on_conflict=yacht_id,source,source_id"
    kept = client.post(url, json=doc(supa.yacht_a, "kept.pdf"), headers=UPSERT).json()[0]
    # One statement: a merge into the kept row, a new row, then a row the CHECK of RLS refuses.
    batch = [
        doc(supa.yacht_a, "kept.pdf", size_bytes=1),
        doc(supa.yacht_a, "new.pdf"),
        doc(supa.yacht_a, "stray.pdf", storage_path=f"{supa.yacht_b}/stray.pdf"),
    ]
    refused = client.post(url, json=batch, headers=UPSERT)
    assert (refused.status_code, refused.json()["code"]) == (403, "42501")
    assert supa.sim.rows("doc_metadata") == [kept]
    # Neither the merge nor the new row left a key behind: both go in as if never tried.
    again = client.post(url, json=batch[:2], headers=UPSERT)
    assert again.status_code == 201, again.text
    merged, new = again.json()
    assert merged["id"] == kept["id"] and merged["size_bytes"] == 1
    assert new["id"] != kept["id"] and len(supa.sim.rows("doc_metadata")) == 2
    plain = client.post("/rest/v1/doc_metadata", json=doc(supa.yacht_a, "new.pdf"))
    assert (plain.status_code, plain.json()["code"]) == (409, "23505")


def test_an_upsert_that_changes_the_id_persists_one_row(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa()
    client = supa.yacht()
    url = "/rest/v1/doc_metadata?on_conflict=yacht_id,source,source_id"
    client.post(url, json=doc(supa.yacht_a), headers=UPSERT)
    new_id = str(uuid.uuid4())
    assert client.post(url, json={**doc(supa.yacht_a), "id": new_id}, headers=UPSERT).status_code == 201
    restarted = make_supa(data_dir=supa.sim.data_dir)
    assert [r["id"] for r in restarted.sim.rows("doc_metadata")] == [new_id]
    # The restarted sim indexes what it read: the same key merges into that row.
    merged = restarted.yacht().post(url, json=doc(supa.yacht_a, size_bytes=7), headers=UPSERT).json()[0]
    assert merged["id"] == new_id and len(restarted.sim.rows("doc_metadata")) == 1
