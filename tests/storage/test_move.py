"""Server-side moves for renames (``POST /storage/v1/object/move``), through the uploader and
against the simulator's rules (source must exist, destination must not, RLS on both keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from destination_fakes import Dest, MemoryCheckpoints, write_file

from celeste_desktop.storage.uploader import MoveOutcome

OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


async def test_a_rename_moves_the_object_without_sending_its_bytes(dest: Dest, tmp_path: Path) -> None:
    yacht = dest.target.yacht_id
    uploader = dest.uploader(MemoryCheckpoints())
    source = write_file(tmp_path / "f", 50_000)
    old, new = f"{yacht}/01_BRIDGE/Plan.pdf", f"{yacht}/02_ENGINEERING/Plan (rev 2).pdf"
    await uploader.upload(source, old, upload_id="a")
    before = dest.sim.supabase.counters.standard_bytes
    assert await uploader.move(old, new) is MoveOutcome.MOVED
    assert [o.name for o in dest.sim.supabase.list_objects("documents")] == [new]
    assert dest.sim.supabase.read_object("documents", new) == source.read_bytes()
    assert dest.sim.supabase.counters.standard_bytes == before
    await uploader.verify(new, 50_000)


async def test_move_outcomes_the_engine_acts_on(dest: Dest, tmp_path: Path) -> None:
    yacht = dest.target.yacht_id
    uploader = dest.uploader(MemoryCheckpoints())
    a, b = f"{yacht}/a.pdf", f"{yacht}/b.pdf"
    await uploader.upload(write_file(tmp_path / "a", 10, seed=1), a, upload_id="a")
    await uploader.upload(write_file(tmp_path / "b", 20, seed=2), b, upload_id="b")
    assert await uploader.move(a, b) is MoveOutcome.DESTINATION_EXISTS
    assert await uploader.move(f"{yacht}/missing.pdf", f"{yacht}/c.pdf") is MoveOutcome.SOURCE_MISSING
    assert await uploader.move(a, a) is MoveOutcome.UNCHANGED
    assert {o.name for o in dest.sim.supabase.list_objects()} == {a, b}  # nothing changed
    with pytest.raises(ValueError):
        await uploader.move(a, f"{OTHER_YACHT}/a.pdf")


async def test_the_simulator_refuses_a_move_into_another_yachts_folder(dest: Dest, tmp_path: Path) -> None:
    yacht = dest.target.yacht_id
    await dest.uploader(MemoryCheckpoints()).upload(write_file(tmp_path / "a", 10), f"{yacht}/a.pdf", upload_id="a")
    body = {"bucketId": "documents", "sourceKey": f"{yacht}/a.pdf", "destinationKey": f"{OTHER_YACHT}/a.pdf"}
    response = await dest.client.post(dest.target.storage("object/move"), json=body, headers=dest.target.headers())
    assert response.status_code == 400 and response.json()["statusCode"] == "403"
    bad_key = {**body, "destinationKey": f"{yacht}/#1.pdf"}
    response = await dest.client.post(dest.target.storage("object/move"), json=bad_key, headers=dest.target.headers())
    assert response.json()["error"] == "InvalidKey"
    missing = {key: value for key, value in body.items() if key != "sourceKey"}
    response = await dest.client.post(dest.target.storage("object/move"), json=missing, headers=dest.target.headers())
    assert response.status_code == 400 and "sourceKey" in response.json()["message"]
    # Another yacht's object is invisible: it cannot be moved out from under that yacht.
    service = {"apikey": dest.sim.supabase.service_key, "Authorization": f"Bearer {dest.sim.supabase.service_key}"}
    upload = await dest.client.post(dest.target.object_url(f"{OTHER_YACHT}/x.pdf"), content=b"x", headers=service)
    assert upload.status_code == 200
    steal = {"bucketId": "documents", "sourceKey": f"{OTHER_YACHT}/x.pdf", "destinationKey": f"{yacht}/x.pdf"}
    response = await dest.client.post(dest.target.storage("object/move"), json=steal, headers=dest.target.headers())
    assert response.json()["statusCode"] == "404"
