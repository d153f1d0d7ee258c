"""The register-mode destination end to end: deliver, relocate after a rename, remove."""

from __future__ import annotations

from pathlib import Path

from destination_fakes import Dest, MemoryCheckpoints, write_file

from celeste_desktop.storage.destination import SupabaseDestination
from celeste_desktop.storage.registration import DocumentRecord
from celeste_desktop.storage.uploader import MoveOutcome


def record(dest: Dest, name: str, folders: tuple[str, ...], size: int) -> DocumentRecord:
    key = "/".join((dest.target.yacht_id, *folders, name))
    return DocumentRecord(drive_id="b!d", item_id="I1", name=name, folder_path=folders, storage_key=key, size=size)


def destination(dest: Dest, *, delete: bool = False) -> SupabaseDestination:
    return SupabaseDestination(dest.uploader(MemoryCheckpoints()), dest.registrar(), delete_objects_on_remove=delete)


async def test_deliver_then_rename_then_remove(dest: Dest, tmp_path: Path) -> None:
    target = destination(dest)
    source = write_file(tmp_path / "spool", 4000)
    first = record(dest, "Plan.pdf", ("01_BRIDGE",), 4000)
    delivery = await target.deliver(source, first, upload_id="I1")
    assert delivery.upload.size == 4000 and len(dest.sim.supabase.rows("doc_metadata")) == 1

    renamed = record(dest, "Passage Plan.pdf", ("01_BRIDGE", "2026"), 4000)
    sent_before = dest.sim.supabase.counters.standard_bytes
    assert await target.relocate(renamed, first.storage_key) is MoveOutcome.MOVED
    assert dest.sim.supabase.counters.standard_bytes == sent_before  # no bytes for a rename
    assert [o.name for o in dest.sim.supabase.list_objects()] == [renamed.storage_key]
    [meta] = dest.sim.supabase.rows("doc_metadata")
    assert meta["storage_path"] == renamed.storage_key and meta["source_id"] == delivery.document_id

    removal = await target.remove(renamed)
    assert removal.document_id == delivery.document_id and not removal.object_deleted
    assert dest.sim.supabase.rows("doc_metadata")[0]["deleted_at"] is not None
    assert [o.name for o in dest.sim.supabase.list_objects()] == [renamed.storage_key]  # kept by default


async def test_deleting_objects_on_remove_is_refused_to_a_yacht_key_without_failing(dest: Dest, tmp_path: Path) -> None:
    target = destination(dest, delete=True)
    doc = record(dest, "Old.pdf", (), 10)
    await target.deliver(write_file(tmp_path / "s", 10), doc, upload_id="I1")
    removal = await target.remove(doc)
    # Yacht keys hold no delete policy: the registration is soft-deleted, the object is swept later.
    assert not removal.object_deleted
    assert dest.sim.supabase.rows("doc_metadata")[0]["deleted_at"] is not None


async def test_a_relocation_whose_source_is_gone_asks_for_an_upload(dest: Dest) -> None:
    target = destination(dest)
    doc = record(dest, "New.pdf", (), 10)
    outcome = await target.relocate(doc, f"{dest.target.yacht_id}/Old.pdf")
    assert outcome is MoveOutcome.SOURCE_MISSING
    assert dest.sim.supabase.rows("doc_metadata") == []
