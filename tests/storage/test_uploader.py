"""Standard and TUS uploads against the simulated Supabase Storage: chunks, resume after a drop
and after an app restart, expired URLs, upserts, verification, bounded memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest
from destination_fakes import Dest, MemoryCheckpoints, SqliteCheckpoints, write_file

from celeste_desktop.storage.tus import CHUNK_SIZE
from celeste_desktop.storage.uploader import STANDARD_LIMIT

MB = 1024 * 1024


def key_for(dest: Dest, name: str) -> str:
    return f"{dest.target.yacht_id}/01_BRIDGE/{name}"


def stored(dest: Dest, key: str) -> bytes:
    return dest.sim.supabase.read_object("documents", key)


async def test_a_small_file_goes_up_in_one_standard_request(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "plan.pdf", 300 * 1024)
    key = key_for(dest, "Passage Plan.pdf")
    result = await dest.uploader(MemoryCheckpoints()).upload(source, key, upload_id="a")
    assert (result.resumable, result.size) == (False, 300 * 1024)
    assert stored(dest, key) == source.read_bytes()
    info = dest.sim.supabase.object_info("documents", key)
    assert info is not None and info.mimetype == "application/pdf"
    posts = dest.of("POST")
    assert len(posts) == 1 and posts[0].upsert == "true" and posts[0].length == 300 * 1024
    assert dest.sim.supabase.counters.standard_bytes == 300 * 1024
    # Storage's 200 names the object, which it sends only once every byte is stored: no size
    # check costs another round trip.
    assert [s.method for s in dest.sent] == ["GET", "POST"]  # the bucket's limit (once), the upload
    assert "/object/info/" not in " ".join(s.url for s in dest.sent)


async def test_the_first_uploads_of_a_sync_share_one_look_at_the_bucket(dest: Dest, tmp_path: Path) -> None:
    uploader = dest.uploader(MemoryCheckpoints())
    sources = [write_file(tmp_path / f"f{n}.pdf", 2048) for n in range(4)]
    await asyncio.gather(*(
        uploader.upload(source, key_for(dest, source.name), upload_id=source.name) for source in sources
    ))  # fmt: skip
    buckets = [s.url for s in dest.of("GET") if "/bucket/" in s.url]
    assert len(buckets) == 1, buckets
    assert all(stored(dest, key_for(dest, source.name)) == source.read_bytes() for source in sources)


async def test_a_reply_that_does_not_name_the_object_is_checked_with_object_info(dest: Dest, tmp_path: Path) -> None:
    # Something answered 200 for Storage without its {"Key": …} (a proxy, a captive portal).
    dest.sim.faults.script("storage", "malformed", method="POST", path="/object/documents/", times=1)
    source = write_file(tmp_path / "log.csv", 4096)
    key = key_for(dest, "Engine Log.csv")
    result = await dest.uploader(MemoryCheckpoints()).upload(source, key, upload_id="a")
    assert result.size == 4096 and stored(dest, key) == source.read_bytes()
    assert [s.url for s in dest.of("GET") if "/object/info/" in s.url]


async def test_exactly_six_megabytes_is_still_a_standard_upload(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "six.bin", STANDARD_LIMIT)
    result = await dest.uploader(MemoryCheckpoints()).upload(source, key_for(dest, "six.bin"), upload_id="a")
    assert not result.resumable and dest.sim.supabase.counters.tus_creations == 0


async def test_a_re_upload_of_changed_content_replaces_the_object(dest: Dest, tmp_path: Path) -> None:
    key = key_for(dest, "Crew List.xlsx")
    uploader = dest.uploader(MemoryCheckpoints())
    await uploader.upload(write_file(tmp_path / "v1", 1000, seed=1), key, upload_id="a")
    second = write_file(tmp_path / "v2", 2000, seed=2)
    await uploader.upload(second, key, upload_id="a")
    assert stored(dest, key) == second.read_bytes()
    assert [o.name for o in dest.sim.supabase.list_objects("documents")] == [key]
    info = dest.sim.supabase.object_info("documents", key)
    assert info is not None and info.mimetype.startswith("application/vnd.openxmlformats")


async def test_a_large_file_goes_up_in_six_megabyte_tus_chunks(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "manual.pdf", 20 * MB)
    key = key_for(dest, "Engine Manual.pdf")
    checkpoints = MemoryCheckpoints()
    positions: list[int] = []
    result = await dest.uploader(checkpoints).upload(source, key, upload_id="f1", progress=positions.append)
    assert result.resumable and result.bytes_sent == 20 * MB and not result.restarted
    assert stored(dest, key) == source.read_bytes()
    patches = dest.of("PATCH")
    assert [p.length for p in patches] == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 20 * MB - 3 * CHUNK_SIZE]
    assert [p.offset for p in patches] == [0, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE]
    tus = [s for s in dest.sent if "upload/resumable" in s.url]
    assert tus and all(s.upsert == "true" for s in tus)  # every TUS request, not only creation
    assert dest.sim.supabase.counters.tus_creations == 1
    assert checkpoints.saved == {}  # cleared once done
    assert [offset for _, _, offset in checkpoints.history] == [0, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE, 20 * MB]
    assert positions[-1] == 20 * MB and positions == sorted(positions)
    info = dest.sim.supabase.object_info("documents", key)
    assert info is not None and info.mimetype == "application/pdf" and info.size == 20 * MB
    assert [s.url for s in dest.of("GET") if "/object/info/" in s.url]  # TUS: the size is always checked


async def test_the_tus_location_is_followed_verbatim(dest: Dest, tmp_path: Path) -> None:
    base = dest.sim.servers["supabase"].base_url.replace("127.0.0.1", "localhost")
    dest.sim.supabase.tus_location_prefix = f"{base}/edge/storage/v1/upload/resumable"
    source = write_file(tmp_path / "big.bin", 7 * MB)
    await dest.uploader(MemoryCheckpoints()).upload(source, key_for(dest, "big.bin"), upload_id="x")
    patches = dest.of("PATCH")
    assert patches and all(p.url.startswith(f"{base}/edge/storage/v1/upload/resumable/") for p in patches)
    assert stored(dest, key_for(dest, "big.bin")) == source.read_bytes()


async def test_a_reply_lost_after_a_chunk_is_resumed_with_head_not_resent(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "drop.bin", 14 * MB)
    key = key_for(dest, "drop.bin")
    # The first chunk lands, but its answer is cut: the client must ask, not send it again.
    dest.sim.faults.script("storage", "reset", method="PATCH", path="upload/resumable/", reset_after=5, times=1)
    result = await dest.uploader(MemoryCheckpoints()).upload(source, key, upload_id="d")
    assert stored(dest, key) == source.read_bytes()
    methods = [s.method for s in dest.sent if "upload/resumable" in s.url]
    assert methods[:4] == ["POST", "PATCH", "HEAD", "PATCH"]
    assert [p.offset for p in dest.of("PATCH")] == [0, CHUNK_SIZE, 2 * CHUNK_SIZE]
    assert dest.sim.supabase.counters.tus_bytes == 14 * MB  # no byte reached the server twice
    assert result.bytes_sent == 14 * MB


async def test_an_upload_cut_mid_chunk_resumes_after_a_restart_from_the_servers_offset(
    dest: Dest, tmp_path: Path
) -> None:
    size = 20 * MB
    source = write_file(tmp_path / "video.mp4", size)
    key = key_for(dest, "Tender Video.mp4")
    state_file = tmp_path / "state.sqlite3"
    uploader = dest.uploader(SqliteCheckpoints(state_file))
    cut = CHUNK_SIZE + 3 * MB

    def stop_midway(position: int) -> None:
        if position >= cut and not task.cancelling():
            task.cancel()  # the app is closed in the middle of the second chunk

    task = asyncio.create_task(uploader.upload(source, key, upload_id="item-1", progress=stop_midway))
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = SqliteCheckpoints(state_file).load("item-1")
    assert saved is not None and saved.offset == CHUNK_SIZE  # the last acknowledged chunk
    upload = dest.sim.supabase.tus_uploads()[0]
    holder = dest.sim.supabase.tus._holders[upload.upload_id]
    for _ in range(500):  # let the server finish with the dropped PATCH (it releases the lock)
        if not holder.lock.locked():
            break
        await asyncio.sleep(0.01)
    kept = upload.offset
    assert kept > CHUNK_SIZE  # part of the cut chunk was kept by the server

    dest.restart()
    dest.sent.clear()
    result = await dest.uploader(SqliteCheckpoints(state_file)).upload(source, key, upload_id="item-1")
    assert stored(dest, key) == source.read_bytes()
    assert result.resumed_from == kept and result.bytes_sent == size - kept
    tus_sent = [s for s in dest.sent if "upload/resumable" in s.url]
    assert tus_sent[0].method == "HEAD" and not dest.of("POST")  # the same upload, asked first
    confirmed = result.resumed_from
    assert all(p.offset is not None and p.offset >= confirmed for p in dest.of("PATCH"))
    assert dest.sim.supabase.counters.tus_bytes == size  # every byte landed exactly once
    assert dest.sim.supabase.counters.tus_creations == 1
    assert SqliteCheckpoints(state_file).load("item-1") is None


async def test_an_expired_upload_url_starts_a_new_upload(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "old.bin", 13 * MB)
    key = key_for(dest, "old.bin")
    checkpoints = MemoryCheckpoints()
    uploader = dest.uploader(checkpoints)

    def stop_after_first_chunk(position: int) -> None:
        if position > CHUNK_SIZE and not task.cancelling():
            task.cancel()

    task = asyncio.create_task(uploader.upload(source, key, upload_id="e", progress=stop_after_first_chunk))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checkpoints.load("e") is not None
    dest.sim.supabase.advance(25 * 3600)  # past the 24 h lifetime of an upload URL
    result = await uploader.upload(source, key, upload_id="e")
    assert result.resumed_from == 0
    assert dest.sim.supabase.counters.tus_creations == 2
    assert stored(dest, key) == source.read_bytes()


async def test_an_upload_url_expiring_midway_restarts_the_upload(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "slow.bin", 13 * MB)
    key = key_for(dest, "slow.bin")
    expired = False

    def expire_once(position: int) -> None:
        nonlocal expired
        if position >= CHUNK_SIZE and not expired:
            expired = True
            dest.sim.supabase.advance(25 * 3600)

    result = await dest.uploader(MemoryCheckpoints()).upload(source, key, upload_id="m", progress=expire_once)
    assert result.restarted
    assert dest.sim.supabase.counters.tus_creations == 2
    assert stored(dest, key) == source.read_bytes()


async def test_a_tus_upload_over_an_existing_object_replaces_it(dest: Dest, tmp_path: Path) -> None:
    key = key_for(dest, "same.bin")
    uploader = dest.uploader(MemoryCheckpoints())
    await uploader.upload(write_file(tmp_path / "a", 7 * MB, seed=1), key, upload_id="s")
    second = write_file(tmp_path / "b", 8 * MB, seed=2)
    await uploader.upload(second, key, upload_id="s")
    assert stored(dest, key) == second.read_bytes()


async def test_memory_stays_bounded_for_a_64_mb_upload(dest: Dest, tmp_path: Path) -> None:
    size = 64 * MB
    source = write_file(tmp_path / "huge.bin", size)
    uploader = dest.uploader(MemoryCheckpoints())
    tracemalloc.start()
    try:
        await uploader.upload(source, key_for(dest, "huge.bin"), upload_id="h", verify=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The simulator runs in this process too (its buffers are about half of the peak); both
    # sides together stay below one 6 MB chunk, let alone the 64 MB file.
    assert peak < CHUNK_SIZE, f"peak {peak / MB:.1f} MB"
    assert dest.sim.supabase.counters.tus_bytes == size


async def test_a_finished_upload_whose_checkpoint_survived_is_not_sent_again(dest: Dest, tmp_path: Path) -> None:
    source = write_file(tmp_path / "done.bin", 8 * MB)
    key = key_for(dest, "done.bin")
    checkpoints = MemoryCheckpoints()
    await dest.uploader(checkpoints).upload(source, key, upload_id="c")
    url = checkpoints.history[-1][1]
    checkpoints.save("c", url, CHUNK_SIZE)  # the app died before it could clear the checkpoint
    dest.sent.clear()
    result = await dest.uploader(checkpoints).upload(source, key, upload_id="c")
    assert result.resumed_from == 8 * MB and result.bytes_sent == 0
    assert not dest.of("PATCH") and not dest.of("POST")
    assert checkpoints.load("c") is None
