"""Downloads against the simulated Graph and its download host over real sockets: no token to the
download host, resume after drops and restarts without resending bytes, expired links, servers that
ignore Range, hash mismatches, SharePoint enrichment, files that change mid-transfer, bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from graph_helpers import GraphHarness, SimulatedKill, qxh

from celeste_desktop.domain.errors import AccessDenied, IntegrityError, SourceChanged
from celeste_desktop.domain.models import DriveKind, RemoteItem
from celeste_desktop.graph.download import NO_HASH_NOTE, DownloadProgress, _Spool
from celeste_desktop.net.streams import READ_HIGH_WATER
from celeste_desktop.sim.tenant_model import Item


def content(graph: GraphHarness, item: Item) -> bytes:
    synth = graph.sim.graph.synth
    return synth.read_all(synth.build(item))


async def listed(graph: GraphHarness, path: str, drive_id: str | None = None) -> RemoteItem:
    return await graph.client.get_by_path(drive_id or graph.personal, path)


def download_requests(graph: GraphHarness) -> list[dict[str, str]]:
    return [dict(s.headers) for s in graph.sent_to(graph.download_host)]


async def test_a_download_verifies_and_never_sends_the_token_to_the_download_host(
    graph: GraphHarness, tmp_path: Path
) -> None:
    path = "/04_MANUALS/Generators/Manuel d'entretien – Générateur.pdf"
    item = await listed(graph, path)
    result = await graph.downloader().download(item, tmp_path / "spool.bin")
    expected = content(graph, graph.item(path))
    assert (tmp_path / "spool.bin").read_bytes() == expected
    assert result.size == item.size and result.quickxor == qxh(expected) == item.quickxor
    assert result.sha256 == hashlib.sha256(expected).hexdigest()
    assert result.note is None and not result.altered_by_sharepoint
    (sent,) = download_requests(graph)
    assert "authorization" not in sent
    content_calls = [s for s in graph.sent if s.url.path.endswith("/content")]
    assert len(content_calls) == 1 and content_calls[0].headers["authorization"].startswith("Bearer ")


async def test_a_reset_mid_body_resumes_without_sending_a_byte_twice(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Deck plan.bin", 3_000_000)
    item = await listed(graph, "/05_DRAWINGS/Deck plan.bin")
    server = graph.sim.servers["download"]
    server.stats.reset()
    graph.sim.faults.script("download", "reset", reset_after=1_000_000)
    offsets: list[int] = []
    result = await graph.downloader().download(
        item, tmp_path / "spool.bin", on_progress=lambda p: offsets.append(p.offset))
    assert result.size == 3_000_000 and result.quickxor == item.quickxor
    first, second = download_requests(graph)
    assert "range" not in first
    resumed_at = int(second["range"].removeprefix("bytes=").rstrip("-"))
    # The drop was checkpointed at exactly what had arrived, and only the rest was asked for.
    # (A TCP reset may discard bytes already sent but not yet read: those are the only repeats.)
    assert 0 < resumed_at < 1_000_000 and resumed_at in offsets
    assert server.stats.bytes_out <= 1_000_000 + (3_000_000 - resumed_at) + 1_000


async def test_a_restart_resumes_from_the_saved_offset(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Hull lines.bin", 2_500_000)
    item = await listed(graph, "/05_DRAWINGS/Hull lines.bin")
    checkpoints: list[int] = []

    def kill_after_first_checkpoint(progress: DownloadProgress) -> None:
        checkpoints.append(progress.offset)
        if progress.offset >= 1_000_000:
            raise SimulatedKill("the app was closed")

    spool = tmp_path / "spool.bin"
    with pytest.raises(SimulatedKill):
        await graph.downloader(checkpoint_bytes=512 * 1024).download(
            item, spool, on_progress=kill_after_first_checkpoint)
    saved = checkpoints[-1]
    with spool.open("ab") as f:
        f.write(b"half-written junk after the checkpoint")
    graph.sent.clear()
    result = await graph.downloader().download(item, spool, offset=saved)
    assert result.resumed_from == saved and result.quickxor == item.quickxor and result.size == item.size
    assert result.sha256 == hashlib.sha256(content(graph, graph.item("/05_DRAWINGS/Hull lines.bin"))).hexdigest()
    (resumed,) = download_requests(graph)
    assert resumed["range"] == f"bytes={saved}-"


async def test_a_spool_shorter_than_the_checkpoint_starts_over(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf")
    spool = tmp_path / "spool.bin"
    spool.write_bytes(b"short")
    result = await graph.downloader().download(item, spool, offset=40_000)
    assert result.resumed_from == 0 and result.quickxor == item.quickxor


async def test_a_server_that_ignores_range_restarts_from_zero(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Piping.bin", 2_000_000)
    item = await listed(graph, "/05_DRAWINGS/Piping.bin")
    spool = tmp_path / "spool.bin"
    spool.write_bytes(content(graph, graph.item("/05_DRAWINGS/Piping.bin"))[:500_000])
    graph.sim.graph.set_ignore_range(True)
    offsets: list[int] = []
    result = await graph.downloader().download(
        item, spool, offset=500_000, on_progress=lambda p: offsets.append(p.offset))
    assert result.quickxor == item.quickxor and result.size == 2_000_000 == spool.stat().st_size
    (request,) = download_requests(graph)
    assert request["range"] == "bytes=500000-"  # asked for the rest, got everything: started over
    assert offsets[0] == 0  # the engine was told the checkpoint went back to zero


def on_download_request(graph: GraphHarness, action: Callable[[int], None]) -> None:
    """Run ``action(n)`` just before the n-th request (1, 2…) leaves for the download host."""
    count = 0

    async def hook(request: httpx.Request) -> None:
        nonlocal count
        if f"{request.url.host}:{request.url.port}" == graph.download_host:
            count += 1
            action(count)

    graph.http.event_hooks["request"].append(hook)


async def test_an_expired_download_link_is_replaced_and_the_transfer_resumes(
    graph: GraphHarness, tmp_path: Path
) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Fire plan.bin", 2_000_000)
    path = "/05_DRAWINGS/Fire plan.bin"
    item = await listed(graph, path)
    graph.sim.faults.script("download", "reset", reset_after=900_000)

    def expire_links(n: int) -> None:
        if n == 2:  # after the drop, before the resumed request: every link handed out has expired
            graph.sim.graph.advance_clock(7200)

    on_download_request(graph, expire_links)
    result = await graph.downloader().download(item, tmp_path / "spool.bin")
    assert result.quickxor == item.quickxor and result.size == item.size
    first, expired, fresh = download_requests(graph)
    assert expired.get("range") == fresh.get("range")  # the new link resumes where the old one stopped
    assert not any("authorization" in h for h in (first, expired, fresh))
    lookups = [s for s in graph.sent if s.url.path.endswith(f"/items/{item.item_id}")]
    assert len(lookups) == 1  # one look-up gave both the fresh link and the change check


async def test_a_link_that_expired_before_a_restart_is_replaced(graph: GraphHarness, tmp_path: Path) -> None:
    path = "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf"
    item = await listed(graph, path)
    spool = tmp_path / "spool.bin"
    spool.write_bytes(content(graph, graph.item(path))[:20_000])
    on_download_request(graph, lambda n: graph.sim.graph.advance_clock(7200) if n == 1 else None)
    result = await graph.downloader().download(item, spool, offset=20_000)
    assert result.quickxor == item.quickxor and result.resumed_from == 20_000
    expired, fresh = download_requests(graph)
    assert expired["range"] == fresh["range"] == "bytes=20000-"


async def test_a_hash_mismatch_is_retried_once_then_fails(graph: GraphHarness, tmp_path: Path) -> None:
    path = "/02_ENGINEERING/Fuel System/Fuel 100% Transfer Log.xlsx"
    graph.sim.graph.corrupt(path)
    item = await listed(graph, path)
    with pytest.raises(IntegrityError) as caught:
        await graph.downloader().download(item, tmp_path / "spool.bin")
    assert "Fuel 100% Transfer Log.xlsx" in caught.value.message
    assert "do not match OneDrive's hash twice" in caught.value.message
    assert len(download_requests(graph)) == 2


async def test_a_one_off_mismatch_heals_on_the_retry(graph: GraphHarness, tmp_path: Path) -> None:
    path = "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf"
    graph.sim.graph.corrupt(path)
    item = await listed(graph, path)

    def heal(progress: DownloadProgress) -> None:
        if progress.offset == item.size:
            graph.sim.graph.corrupt(path, False)

    result = await graph.downloader().download(item, tmp_path / "spool.bin", on_progress=heal)
    assert result.quickxor == item.quickxor and len(download_requests(graph)) == 2


async def test_sharepoint_enrichment_is_accepted_and_flagged(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.set_enrichment(True)
    item = await listed(graph, "/Yacht Docs/02_ENGINEERING/Main Engines/Engine Room Checklist.docx", graph.library)
    result = await graph.downloader().download(item, tmp_path / "spool.bin")  # drive kind looked up
    assert result.altered_by_sharepoint and result.size != item.size
    assert result.note and "SharePoint" in result.note
    assert result.quickxor == qxh((tmp_path / "spool.bin").read_bytes())


async def test_an_office_file_outside_sharepoint_gets_no_such_pass(graph: GraphHarness, tmp_path: Path) -> None:
    path = "/08_MAINTENANCE/Main Engines/Ölwechsel Protokoll 2024.xlsx"
    graph.sim.graph.corrupt(path)
    item = await listed(graph, path)
    with pytest.raises(IntegrityError):
        await graph.downloader().download(item, tmp_path / "spool.bin", drive_kind=DriveKind.ONEDRIVE)


async def test_a_file_without_a_hash_is_verified_by_size(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/13_CERTIFICATIONS/Radio/Ship Station Licence 2024.pdf")
    assert item.quickxor is None
    result = await graph.downloader().download(item, tmp_path / "spool.bin")
    assert result.note == NO_HASH_NOTE and result.size == 64_000


async def test_an_empty_file(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/06_PROCEDURES/Bunkering/Bunker Receipt Template.txt")
    result = await graph.downloader().download(item, tmp_path / "spool.bin")
    assert result.size == 0 and result.quickxor == item.quickxor


async def test_a_file_changed_during_its_transfer_raises_source_changed(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Changing.bin", 2_000_000)
    item = await listed(graph, "/05_DRAWINGS/Changing.bin")
    graph.sim.faults.script("download", "reset", reset_after=800_000)
    on_download_request(graph, lambda n: graph.sim.graph.change("/05_DRAWINGS/Changing.bin") if n == 2 else None)
    with pytest.raises(SourceChanged) as caught:
        await graph.downloader().download(item, tmp_path / "spool.bin")
    assert caught.value.path == "Changing.bin"


async def test_a_resume_after_the_file_changed_raises_source_changed(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf")
    spool = tmp_path / "spool.bin"
    spool.write_bytes(content(graph, graph.item("/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf"))[:20_000])
    graph.sim.graph.change(item.item_id)
    with pytest.raises(SourceChanged):
        await graph.downloader().download(item, spool, offset=20_000)
    assert download_requests(graph) == []  # found out before fetching a single byte


async def test_a_rename_during_the_transfer_is_not_a_change(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf")
    spool = tmp_path / "spool.bin"
    spool.write_bytes(content(graph, graph.item("/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf"))[:20_000])
    graph.sim.graph.rename(item.item_id, "Fiche sécurité #3.pdf")
    result = await graph.downloader().download(item, spool, offset=20_000)
    assert result.resumed_from == 20_000 and result.quickxor == item.quickxor


async def test_malware_is_refused_without_a_request(graph: GraphHarness, tmp_path: Path) -> None:
    item = await listed(graph, "/04_MANUALS/Navigation/ECDIS Chart Updater.zip")
    graph.sent.clear()
    with pytest.raises(AccessDenied) as caught:
        await graph.downloader().download(item, tmp_path / "spool.bin")
    assert "malware" in caught.value.message and graph.sent == []


async def test_a_100_mb_download_keeps_memory_small(graph: GraphHarness, tmp_path: Path) -> None:
    graph.sim.graph.add_file("/05_DRAWINGS", "Big set.bin", 100 * 1024 * 1024)
    item = await listed(graph, "/05_DRAWINGS/Big set.bin")
    downloader = graph.downloader()
    tracemalloc.start()
    try:
        result = await downloader.download(item, tmp_path / "spool.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == 100 * 1024 * 1024 and result.quickxor == item.quickxor
    # Bounded whatever the file size: chunks gathered while a write lags, the write in flight,
    # the socket's read buffer, plus the in-process simulator's own buffers (all traced here).
    bound = (2 * _Spool.LAG_WRITES + 2) * 1024 * 1024 + READ_HIGH_WATER + 2 * 1024 * 1024
    assert peak < bound < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
