"""Registration with the pipeline's tables in the simulated PostgREST: the contract of
supabase/README.md, idempotence, renames, soft delete, and the errors a person sees."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from destination_fakes import Dest

from celeste_desktop.domain.errors import ConfigError, RemoteError, ServiceUnavailable
from celeste_desktop.domain.models import document_id
from celeste_desktop.storage.registration import DocumentRecord, Registrar

OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def record(dest: Dest, **changes: object) -> DocumentRecord:
    yacht = dest.target.yacht_id
    values: dict[str, object] = {
        "drive_id": "b!drive-1",
        "item_id": "01ITEM",
        "name": "Main Engine Manual.pdf",
        "folder_path": ("Yacht Docs", "02_ENGINEERING", "Main Engines"),
        "storage_key": f"{yacht}/Yacht Docs/02_ENGINEERING/Main Engines/Main Engine Manual.pdf",
        "size": 1234,
        "sha256": "ab" * 32,
        "drive_name": "Documents",
    }
    values.update(changes)
    return DocumentRecord(**values)  # type: ignore[arg-type]


def rows(dest: Dest, table: str) -> list[dict[str, object]]:
    return dest.sim.supabase.rows(table)


async def test_registration_writes_one_row_in_each_table_as_the_contract_says(dest: Dest) -> None:
    registrar = dest.registrar()
    doc = record(dest)
    doc_id = await registrar.register(doc)
    assert doc_id == document_id(dest.target.yacht_id, "b!drive-1", "01ITEM")
    [meta] = rows(dest, "doc_metadata")
    assert meta["yacht_id"] == dest.target.yacht_id
    assert (meta["source"], meta["source_id"]) == ("onedrive", doc_id)
    assert meta["filename"] == "Main Engine Manual.pdf"
    assert meta["storage_path"] == doc.storage_key and meta["storage_bucket"] == "documents"
    assert meta["original_path"] == "Yacht Docs/02_ENGINEERING/Main Engines/Main Engine Manual.pdf"
    assert meta["system_path"] == "Yacht Docs/02_ENGINEERING/Main Engines"
    assert (meta["doc_type"], meta["system_type"]) == ("schematic", "propulsion")
    assert meta["content_type"] == "application/pdf" and meta["size_bytes"] == 1234 and meta["sha256"] == "ab" * 32
    metadata = meta["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["onedrive"]["path"] == doc.original_path and metadata["onedrive"]["item_id"] == "01ITEM"
    assert meta["deleted_at"] is None
    [entry] = rows(dest, "search_index")
    assert (entry["object_type"], entry["object_id"]) == ("document", doc_id)
    assert entry["org_id"] == entry["yacht_id"] == dest.target.yacht_id
    assert entry["embedding_status"] == "pending_extraction"
    payload = entry["payload"]
    assert isinstance(payload, dict)
    assert payload["storage_path"] == doc.storage_key and payload["source"] == "onedrive"
    assert (payload["doc_type"], payload["system_tag"], payload["bucket"]) == ("schematic", "propulsion", "documents")
    assert "Main Engine Manual.pdf" in str(entry["search_text"])


async def test_files_the_pipeline_cannot_read_are_storage_only(dest: Dest) -> None:
    await dest.registrar().register(record(dest, name="Deck.dwg", storage_key=f"{dest.target.yacht_id}/Deck.dwg"))
    [entry] = rows(dest, "search_index")
    assert entry["embedding_status"] == "storage_only"


async def test_registering_twice_keeps_one_row_per_table(dest: Dest) -> None:
    registrar = dest.registrar()
    await registrar.register(record(dest))
    dest.restart()  # a second sync, another app run
    await dest.registrar().register(record(dest, size=999))
    assert len(rows(dest, "doc_metadata")) == 1 and len(rows(dest, "search_index")) == 1
    assert rows(dest, "doc_metadata")[0]["size_bytes"] == 999


async def test_a_rename_updates_the_same_rows_and_can_keep_the_extraction(dest: Dest) -> None:
    registrar = dest.registrar()
    doc_id = await registrar.register(record(dest))
    # The pipeline (service role) has extracted the text meanwhile.
    service = {"apikey": dest.sim.supabase.service_key, "Authorization": f"Bearer {dest.sim.supabase.service_key}"}
    done = await dest.client.patch(
        dest.target.rest("search_index"), params={"object_id": f"eq.{doc_id}"},
        json={"embedding_status": "completed"}, headers=service,
    )  # fmt: skip
    assert done.status_code == 204
    renamed = record(dest, name="ME Manual.pdf", storage_key=f"{dest.target.yacht_id}/02_ENGINEERING/ME Manual.pdf",
                     folder_path=("02_ENGINEERING",))  # fmt: skip
    await registrar.register(renamed, reindex=False)
    [meta] = rows(dest, "doc_metadata")
    assert meta["filename"] == "ME Manual.pdf" and meta["system_path"] == "02_ENGINEERING"
    [entry] = rows(dest, "search_index")
    assert entry["embedding_status"] == "completed"
    assert isinstance(entry["payload"], dict) and entry["payload"]["filename"] == "ME Manual.pdf"


async def test_a_removed_file_is_soft_deleted_and_comes_back_when_registered_again(dest: Dest) -> None:
    registrar = dest.registrar()
    doc = record(dest)
    await registrar.register(doc)
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    await registrar.mark_deleted(doc, deleted_at=when)
    [meta] = rows(dest, "doc_metadata")
    assert meta["deleted_at"] == when.isoformat()
    [entry] = rows(dest, "search_index")
    assert isinstance(entry["payload"], dict) and entry["payload"]["deleted_at"] == when.isoformat()
    assert entry["embedding_status"] == "pending_extraction"  # the pipeline's column is left alone
    await registrar.register(doc)
    assert rows(dest, "doc_metadata")[0]["deleted_at"] is None
    payload = rows(dest, "search_index")[0]["payload"]
    assert isinstance(payload, dict) and "deleted_at" not in payload


async def test_removing_a_file_never_registered_is_harmless(dest: Dest) -> None:
    await dest.registrar().mark_deleted(record(dest))
    assert rows(dest, "doc_metadata") == [] and rows(dest, "search_index") == []


async def test_another_yachts_key_is_refused_with_a_clear_message(dest: Dest) -> None:
    other = dest.with_target(key=dest.sim.supabase.mint_yacht_key(OTHER_YACHT))
    with pytest.raises(ConfigError) as caught:
        await dest.registrar(other).register(record(dest))
    assert caught.value.setting == "supabase_key"
    assert "this key belongs to another yacht" in caught.value.message and "yacht_id" in caught.value.message
    assert rows(dest, "doc_metadata") == []


async def test_wrong_keys_name_their_setting(dest: Dest) -> None:
    head, payload, _ = dest.target.anon_key.split(".")
    with pytest.raises(ConfigError) as caught:
        await dest.registrar(dest.with_target(anon_key=f"{head}.{payload}.AAAA")).register(record(dest))
    assert caught.value.setting == "supabase_anon_key"
    head, payload, _ = dest.target.key.split(".")
    with pytest.raises(ConfigError) as caught:
        await dest.registrar(dest.with_target(key=f"{head}.{payload}.AAAA")).register(record(dest))
    assert caught.value.setting == "supabase_key"


async def test_a_key_outside_the_yachts_folder_is_never_registered(dest: Dest) -> None:
    with pytest.raises(ValueError):
        await dest.registrar().register(record(dest, storage_key=f"{OTHER_YACHT}/x.pdf"))


# -- batching ----------------------------------------------------------------------------------


def posts_to(dest: Dest, table: str) -> int:
    return sum(1 for s in dest.of("POST") if f"/rest/v1/{table}?" in s.url)


def numbered(dest: Dest, n: int, **changes: object) -> DocumentRecord:
    name = f"Report {n:02d}.pdf"
    folder = ("02_ENGINEERING", "Reports")
    key = f"{dest.target.yacht_id}/{'/'.join(folder)}/{name}"
    values: dict[str, object] = {"item_id": f"ITEM{n:02d}", "name": name, "folder_path": folder, "storage_key": key}
    return record(dest, **{**values, **changes})


async def test_concurrent_registrations_share_one_request_per_table(dest: Dest) -> None:
    registrar = dest.registrar()
    records = [numbered(dest, n) for n in range(12)]
    ids = await asyncio.gather(*(registrar.register(r) for r in records))
    assert ids == [registrar.document_id(r) for r in records]  # each caller gets its own id
    assert (posts_to(dest, "doc_metadata"), posts_to(dest, "search_index")) == (1, 1)
    # Row by row exactly what a registration on its own writes.
    by_id = {row["source_id"]: row for row in rows(dest, "doc_metadata")}
    entries = {row["object_id"]: row for row in rows(dest, "search_index")}
    for doc in records:
        doc_id = registrar.document_id(doc)
        assert {k: by_id[doc_id][k] for k in registrar.doc_metadata_row(doc)} == registrar.doc_metadata_row(doc)
        wanted = registrar.search_index_row(doc)
        assert {k: entries[doc_id][k] for k in wanted} == wanted


async def test_a_batch_is_capped_and_the_rest_follows_in_the_next_request(dest: Dest) -> None:
    registrar = Registrar(dest.rest(), clock=dest.clock, max_batch=5)
    await asyncio.gather(*(registrar.register(numbered(dest, n)) for n in range(12)))
    assert posts_to(dest, "doc_metadata") == 3 and len(rows(dest, "doc_metadata")) == 12


async def test_a_row_the_server_refuses_fails_only_its_own_registration(dest: Dest) -> None:
    registrar = dest.registrar()
    good = [numbered(dest, n) for n in range(4)]
    bad = numbered(dest, 9, size=2**63)  # out of range for bigint: Postgres refuses the statement
    results = await asyncio.gather(
        *(registrar.register(r) for r in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], RemoteError) and "out of range" in results[2].message
    assert [r for i, r in enumerate(results) if i != 2] == [registrar.document_id(r) for r in good]
    assert {row["filename"] for row in rows(dest, "doc_metadata")} == {r.name for r in good}
    assert {row["object_id"] for row in rows(dest, "search_index")} == {registrar.document_id(r) for r in good}
    # The batch was tried once, then each record on its own.
    assert posts_to(dest, "doc_metadata") == 1 + 5


async def test_the_same_document_twice_at_once_lands_in_the_order_asked(dest: Dest) -> None:
    registrar = dest.registrar()
    first, second = record(dest, size=1), record(dest, size=2)
    assert len(set(await asyncio.gather(registrar.register(first), registrar.register(second)))) == 1
    [meta] = rows(dest, "doc_metadata")
    assert meta["size_bytes"] == 2 and len(rows(dest, "search_index")) == 1


async def test_a_rename_in_a_batch_still_keeps_the_extraction(dest: Dest) -> None:
    registrar = dest.registrar()
    moved = numbered(dest, 1)
    await registrar.register(moved)
    service = {"apikey": dest.sim.supabase.service_key, "Authorization": f"Bearer {dest.sim.supabase.service_key}"}
    done = await dest.client.patch(
        dest.target.rest("search_index"), params={"object_id": f"eq.{registrar.document_id(moved)}"},
        json={"embedding_status": "completed"}, headers=service,
    )  # fmt: skip
    assert done.status_code == 204
    await asyncio.gather(registrar.register(moved, reindex=False), registrar.register(numbered(dest, 2)))
    status = {row["object_id"]: row["embedding_status"] for row in rows(dest, "search_index")}
    assert status == {
        registrar.document_id(moved): "completed",
        registrar.document_id(numbered(dest, 2)): "pending_extraction",
    }


async def test_a_cancelled_caller_does_not_hold_up_the_others(dest: Dest) -> None:
    registrar = dest.registrar()
    waiting = asyncio.create_task(registrar.register(numbered(dest, 1)))
    others = asyncio.gather(*(registrar.register(numbered(dest, n)) for n in range(2, 5)))
    await asyncio.sleep(0)
    waiting.cancel()
    assert len(await others) == 3
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert {row["filename"] for row in rows(dest, "doc_metadata")} == {numbered(dest, n).name for n in range(2, 5)}


async def test_a_removal_waits_for_the_registration_on_its_way(dest: Dest) -> None:
    registrar = dest.registrar()
    doc = record(dest)
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    registering = asyncio.create_task(registrar.register(doc))
    await asyncio.sleep(0)
    await registrar.mark_deleted(doc, deleted_at=when)
    await registering
    assert rows(dest, "doc_metadata")[0]["deleted_at"] == when.isoformat()


async def test_with_the_link_down_every_caller_fails_without_a_request_each(dest: Dest) -> None:
    dest.sim.faults.script("rest", "reset", reset_after=0, times=1000)
    registrar = dest.registrar()
    results = await asyncio.gather(*(registrar.register(numbered(dest, n)) for n in range(6)), return_exceptions=True)
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert posts_to(dest, "doc_metadata") == 4  # the policy's attempts for the one batch
