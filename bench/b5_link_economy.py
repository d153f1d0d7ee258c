"""B5: link economy: bytes on the wire per document byte, and bytes re-sent after a crash.

Targets: on a first sync, bytes on the wire ÷ document bytes ≤ 2.02 (every byte both ways,
headers included, counted by the simulators; the app's own meter, ``status --json`` ``used``,
is reported beside it); after ``kill -9`` at 60 % of the B1 transfer and a restart, bytes
re-sent ≤ 12 MiB.

    .venv/bin/python bench/b5_link_economy.py [--size-mib 1024] [--keep]

Runs, each with a fresh home against one simulator process:

1. First sync of the demo yacht's own documents (the demo tenant without its generated
   archive: about 700 files of every kind and size, 400 MB): the realistic mix.
2. First sync of the B1 file (1 GiB), uninterrupted: the baseline for 3.
3. The B1 file again under another name; the app is killed with SIGKILL when 60 % of the
   transfer's bytes (download + upload) have crossed, then started again and left to finish.
   Re-sent = wire bytes of both runs − wire bytes of run 2. The stored object is then compared
   byte for byte with its source.
4. As 3, but killed at 60 % of the download (the spool and its checkpoint, not TUS).
"""

from __future__ import annotations

import argparse
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import benchlib as b
import figures as fig


def first_sync(sim: b.SimProcess, home: Path, folders: list[str]) -> dict[str, Any]:
    app = b.AppHome(home, sim.settings)
    app.setup(folders)
    objects_before = sim.command("objects")
    before = sim.stats()
    run = app.sync()
    delta = sim.stats().minus(before)
    objects_after = sim.command("objects")
    status = app.status()
    documents = objects_after["bytes"] - objects_before["bytes"]
    meter = status.get("used", {}).get("period_bytes")
    return {
        "files": objects_after["count"] - objects_before["count"],
        "document_bytes": documents,
        "wire_bytes": delta.wire,
        "wire_by_service": {name: counts.wire for name, counts in delta.servers.items()},
        "requests": {name: counts.requests for name, counts in delta.servers.items()},
        "wire_per_document_byte": round(delta.wire / documents, 5) if documents else None,
        "app_meter_bytes": meter,
        "app_meter_per_document_byte": round(meter / documents, 5) if documents and meter else None,
        "run": run.summary(),
    }


def crash_and_resume(sim: b.SimProcess, home: Path, name: str, size: int, *, baseline_wire: int,
                     kill_at: float, phase: str) -> dict[str, Any]:
    """Copy one ``size`` file, SIGKILL the app at ``kill_at`` of ``phase``, restart, finish."""
    folder = f"bench-crash-{name}"
    sim.control("add_folder", parent="/", name=folder)
    sim.control("add_file", parent=f"/{folder}", name="large.bin", size=size, seed=11)
    app = b.AppHome(home, sim.settings)
    app.setup([f"/{folder}"])
    start = sim.stats()
    # Whole transfer: download (size) then upload (size); the download phase alone: size.
    goal = kill_at * (2 * size if phase == "transfer" else size)

    def due() -> bool:
        now = sim.stats().minus(start)
        return now["download"].bytes_out + now["supabase"].bytes_in >= goal

    killed = app.sync(check=False, watch=due, watch_interval=0.02)
    at_kill = sim.stats().minus(start)
    checkpoint = saved_checkpoint(home)
    resumed = app.sync()
    total = sim.stats().minus(start)
    check = sim.command("check")
    mine = [m for m in check["mismatched"] + check["missing"] if m.startswith(folder)]
    status = app.status()
    return {
        "kill_at": f"{kill_at:.0%} of the {'download' if phase == 'download' else 'transfer (download + upload)'}",
        "killed": killed.killed,
        "at_kill": {"downloaded": at_kill["download"].bytes_out, "uploaded": at_kill["supabase"].bytes_in,
                    "saved_checkpoint": checkpoint},
        "after_restart": {
            "downloaded": total["download"].bytes_out - at_kill["download"].bytes_out,
            "uploaded": total["supabase"].bytes_in - at_kill["supabase"].bytes_in,
            "wall_s": round(resumed.wall_s, 2),
        },
        "wire_bytes_total": total.wire,
        "resent_bytes": total.wire - baseline_wire,
        "resent_document_bytes": (total["download"].bytes_out - size) + (total["supabase"].bytes_in - size),
        "object_matches_source": not mine and status.get("files_succeeded") == 1,
        "problems": mine,
    }


def saved_checkpoint(home: Path) -> dict[str, Any]:
    """What the killed app had made durable: its transfer row and the spool file's size."""
    found = list(home.rglob("state.sqlite3"))
    if not found:
        return {}
    with closing(sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT download_offset, download_complete, tus_offset, spool_path FROM transfers").fetchone()
    if row is None:
        return {}
    spool = Path(row[3])
    return {
        "download_offset": row[0], "download_complete": bool(row[1]), "tus_offset": row[2],
        "spool_file_bytes": spool.stat().st_size if spool.exists() else None,
    }


def economy_text(sync: dict[str, Any]) -> str:
    files = f"{sync['files']} file{'s' if sync['files'] != 1 else ''}"
    return (f"{sync['wire_per_document_byte']:.4f} ({files}, {sync['document_bytes'] / b.MB:.0f} MB; "
            f"app's own meter {sync['app_meter_per_document_byte']:.4f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="the B1 file in MiB (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    size = args.size_mib * b.MIB
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        demo = first_sync(sim, root / "demo", ["/"])

        sim.control("add_folder", parent="/", name="bench-folder")
        sim.control("add_file", parent="/bench-folder", name="large.bin", size=size, seed=11)
        large = first_sync(sim, root / "large", ["/bench-folder"])
        crash = crash_and_resume(sim, root / "crash1", "transfer", size, baseline_wire=large["wire_bytes"],
                                 kill_at=0.6, phase="transfer")
        crash_download = crash_and_resume(sim, root / "crash2", "download", size, baseline_wire=large["wire_bytes"],
                                          kill_at=0.6, phase="download")

    result: dict[str, Any] = {
        "title": "link economy",
        "workload": {
            "demo_selection": "/ (the whole demo tenant)",
            "large_file_bytes": size,
            "full_size": args.size_mib == 1024,
        },
        "first_sync_demo_documents": demo,
        "first_sync_large_file": large,
        "crash_at_60_percent_of_transfer": crash,
        "crash_at_60_percent_of_download": crash_download,
        "note": "Wire bytes are the plain-text HTTP bytes the simulators received and sent (request and status "
        "lines, headers, bodies, chunk framing); TLS records add about 0.1-0.5 % on top.",
    }
    matched = bool(crash["object_matches_source"] and crash_download["object_matches_source"])
    targets = [
        fig.Target("first sync, demo tenant: wire ÷ document bytes", demo["wire_per_document_byte"], 2.02, "<=",
                   figure=economy_text(demo)),
        fig.Target("first sync, B1 file: wire ÷ document bytes", large["wire_per_document_byte"], 2.02, "<=",
                   figure=economy_text(large)),
        fig.Target("kill -9 at 60% of the B1 transfer, restart: bytes re-sent", crash["resent_bytes"] / b.MIB, 12, "<=",
                   "MiB", figure=f"{crash['resent_bytes'] / b.MIB:.2f} MiB"),
        fig.Target("kill -9 at 60% of the B1 download, restart: bytes re-sent", crash_download["resent_bytes"] / b.MIB,
                   12, "<=", "MiB", figure=f"{crash_download['resent_bytes'] / b.MIB:.2f} MiB"),
        fig.Target("objects after the crashes match their source", float(matched), 1, ">=",
                   figure="yes" if matched else "no"),
    ]
    fig.write_result("B5", result, targets, variant=None if args.size_mib == 1024 else f"{args.size_mib}mib")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
