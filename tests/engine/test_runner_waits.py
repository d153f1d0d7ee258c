"""Actions that wait for others (a key freed first, names exchanged through a staging key) and the
dry run's printed list, end to end against the simulators as a script runs them."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest

from celeste_desktop.cli.main import run
from celeste_desktop.sim.stack import SimStack

BUCKET = "documents"
FOLDER = "/04_MANUALS/Galley"


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def synced_home(sim_home: Path, sim: SimStack) -> Path:
    assert cli(sim_home, "login", "--device-code")[0] == 0
    assert cli(sim_home, "select", FOLDER)[0] == 0
    code, out, err = cli(sim_home, "sync")
    assert code == 0, out + err
    return sim_home


def stored(sim: SimStack) -> dict[str, str]:
    """original_path -> SHA-256 of the stored object, for every live registration."""
    found: dict[str, str] = {}
    for row in sim.supabase.rows("doc_metadata"):
        if row["deleted_at"] is None:
            found[row["original_path"]] = hashlib.sha256(
                sim.supabase.read_object(BUCKET, row["storage_path"])
            ).hexdigest()
    return found


def source(sim: SimStack, path: str) -> str:
    item = sim.graph.find(path)
    return hashlib.sha256(sim.graph.synth.read_all(sim.graph.synth.build(item))).hexdigest()


def test_two_files_exchanging_names_both_end_in_place_without_bytes(synced_home: Path, sim: SimStack) -> None:
    names = sorted(item.name for item in sim.graph.tenant.walk(sim.graph.find(FOLDER).id) if item.kind == "file")
    first, second = names[0], names[1]
    control = sim.graph
    control.rename(f"{FOLDER}/{first}", "swap-in-progress.tmp")
    control.rename(f"{FOLDER}/{second}", first)
    control.rename(f"{FOLDER}/swap-in-progress.tmp", second)
    sim.reset_stats()
    code, out, err = cli(synced_home, "sync")
    assert code == 0, out + err
    assert sim.servers["download"].stats.requests == 0, "a rename moves no bytes"
    now = stored(sim)
    for name in (first, second):
        path = f"{FOLDER}/{name}"
        assert now[path.lstrip("/")] == source(sim, path), name
    assert not any("(*staging)" in obj.name for obj in sim.supabase.list_objects(BUCKET))


def test_a_file_replaced_under_the_same_name_is_sent_after_the_old_one_is_removed(
    synced_home: Path, sim: SimStack
) -> None:
    name = sorted(item.name for item in sim.graph.tenant.walk(sim.graph.find(FOLDER).id) if item.kind == "file")[0]
    sim.graph.delete(f"{FOLDER}/{name}")
    sim.graph.add_file(FOLDER, name, 12_345)
    code, out, err = cli(synced_home, "sync")
    assert code == 0, out + err
    path = f"{FOLDER}/{name}"
    assert stored(sim)[path.lstrip("/")] == source(sim, path)


def test_dry_run_lists_every_planned_file_and_totals_the_uploads(sim_home: Path, sim: SimStack) -> None:
    assert cli(sim_home, "login", "--device-code")[0] == 0
    assert cli(sim_home, "select", "01_BRIDGE", "04_MANUALS")[0] == 0
    code, out, err = cli(sim_home, "sync", "--dry-run")
    assert code == 0, out + err
    listed = [line for line in out.splitlines() if line.startswith("would ")]
    uploads = [line for line in listed if line.startswith("would upload ")]
    planned = re.search(r"Planned: (\d+) files", out)
    assert planned is not None and int(planned.group(1)) == len(listed)
    assert len(uploads) > 30
    summary = re.search(r"Would copy (\d+) files", out)
    assert summary is not None and int(summary.group(1)) == len(uploads)
    assert sim.servers["download"].stats.requests == 0


def test_an_urgent_file_waiting_for_a_non_urgent_removal_does_not_hang(sim_home: Path, sim: SimStack) -> None:
    # The old file's DELETE comes from its delivery record, which is not urgent; the new file
    # under the same name is, and waits for that DELETE to free the storage key.
    assert cli(sim_home, "login", "--device-code")[0] == 0
    assert cli(sim_home, "select", "--urgent", FOLDER)[0] == 0
    assert cli(sim_home, "sync")[0] == 0
    name = sorted(item.name for item in sim.graph.tenant.walk(sim.graph.find(FOLDER).id) if item.kind == "file")[0]
    sim.graph.delete(f"{FOLDER}/{name}")
    sim.graph.add_file(FOLDER, name, 12_345)
    code, out, err = cli(sim_home, "sync")
    assert code == 0, out + err
    path = f"{FOLDER}/{name}"
    assert stored(sim)[path.lstrip("/")] == source(sim, path)
