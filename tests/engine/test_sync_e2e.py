"""The headless sync end to end against the simulators, over real sockets, as a script runs it."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from celeste_desktop.cli.main import run
from celeste_desktop.sim.stack import SimStack

BUCKET = "documents"


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def expected_files(sim: SimStack, *tops: str) -> dict[str, bytes]:
    """Path below the drive root -> content, for every plain file under ``tops`` in the tenant."""
    tenant = sim.graph.tenant
    drive = tenant.drives[sim.graph.personal_drive_id]
    found: dict[str, bytes] = {}
    for item in tenant.walk(drive.root_id):
        if item.kind != "file" or item.malware or item.deleted:
            continue
        parts: list[str] = []
        current = item
        inside_package = False
        while current.parent_id is not None:
            parts.append(current.name)
            parent = tenant.items[current.parent_id]
            if parent.kind not in ("folder", "root"):
                inside_package = True
            current = parent
        path = "/".join(reversed(parts))
        if inside_package or not path.startswith(tops):
            continue
        found[path] = sim.graph.synth.read_all(sim.graph.synth.build(item))
    return found


@pytest.fixture
def synced_home(sim_home: Path, sim: SimStack) -> Path:
    code, out, err = cli(sim_home, "login", "--device-code")
    assert code == 0, out + err
    code, out, err = cli(sim_home, "select", "01_BRIDGE", "04_MANUALS")
    assert code == 0, err
    return sim_home


def test_first_sync_copies_and_registers_every_selected_file_once(synced_home: Path, sim: SimStack) -> None:
    code, out, err = cli(synced_home, "sync")
    assert code == 0, out + err
    expected = expected_files(sim, "01_BRIDGE/", "04_MANUALS/")
    assert len(expected) > 30
    objects = {obj.name: obj for obj in sim.supabase.list_objects(BUCKET)}
    rows = {row["original_path"]: row for row in sim.supabase.rows("doc_metadata")}
    assert set(rows) == set(expected), "one registration per selected file, and nothing else"
    assert len(sim.supabase.rows("search_index")) == len(expected)
    for path, content in expected.items():
        row = rows[path]
        stored = sim.supabase.read_object(BUCKET, row["storage_path"])
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(content).hexdigest() == row["sha256"], path
        assert row["storage_path"].startswith(f"{sim.yacht_id}/")
    assert len(objects) == len(expected), "no stray or partial objects"
    # OneNote and malware are skipped with their reasons, visibly.
    assert "OneNote notebooks have no downloadable file" in out
    assert "malware" in out
    code, out, _ = cli(synced_home, "status", "--json")
    status = json.loads(out)
    assert status["status"] == "completed"
    assert status["files_succeeded"] == len(expected)
    assert status["files_failed"] == 0
    assert status["files_skipped"] >= 2
    assert status["account"]["username"] == "it.officer@mysimyacht.onmicrosoft.com"


def test_no_change_sync_moves_nothing_and_asks_graph_little(synced_home: Path, sim: SimStack) -> None:
    assert cli(synced_home, "sync")[0] == 0
    sim.reset_stats()
    sim.servers["graph"].record_paths = True
    code, out, err = cli(synced_home, "sync")
    assert code == 0, out + err
    graph = sim.servers["graph"].stats
    assert graph.requests <= 3, f"{graph.requests} Graph requests for a sync with nothing to do: {graph.paths}"
    assert sim.servers["download"].stats.requests == 0
    supabase = sim.servers["supabase"].stats
    assert supabase.bytes_in < 20_000, "no document bytes may cross for a no-change sync"


def test_incremental_sync_moves_only_what_changed(synced_home: Path, sim: SimStack) -> None:
    assert cli(synced_home, "sync")[0] == 0
    control = sim.graph
    control.add_file("/04_MANUALS/Generators", "New Service Bulletin.pdf", 40_000)
    edited = control.find("/01_BRIDGE/Navigation/Navigation Procedures.pdf")
    control.change(edited.id, size=55_555)
    control.rename("/04_MANUALS/Galley/Miele Professional Range Parts Catalogue.pdf", "Miele Range Parts.pdf")
    control.move("/04_MANUALS/Tender/Tender Quick Reference.docx", "/04_MANUALS/Main Engines")
    control.delete("/01_BRIDGE/Passage Plans/Passage Plans Checklist.docx")
    sim.reset_stats()
    code, out, err = cli(synced_home, "sync")
    assert code == 0, out + err
    received = sim.supabase.counters
    # Only the new and the edited file cross the link: 40,000 + 55,555 bytes, plus headers.
    download_bytes = sim.servers["download"].stats.bytes_out
    assert 95_555 <= download_bytes < 95_555 + 20_000, download_bytes
    rows = {row["original_path"]: row for row in sim.supabase.rows("doc_metadata")}
    assert "04_MANUALS/Generators/New Service Bulletin.pdf" in rows
    assert rows["01_BRIDGE/Navigation/Navigation Procedures.pdf"]["size_bytes"] == 55_555
    assert "04_MANUALS/Galley/Miele Range Parts.pdf" in rows
    assert "04_MANUALS/Main Engines/Tender Quick Reference.docx" in rows
    assert rows["01_BRIDGE/Passage Plans/Passage Plans Checklist.docx"]["deleted_at"] is not None
    # The renamed and moved files' objects moved on the server: their old keys are gone.
    keys = {obj.name for obj in sim.supabase.list_objects(BUCKET)}
    assert rows["04_MANUALS/Galley/Miele Range Parts.pdf"]["storage_path"] in keys
    assert not any("Miele Professional Range Parts Catalogue" in key for key in keys)
    assert received is not None
