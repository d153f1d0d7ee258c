"""B3: a 100,000-item tenant: the first enumeration and plan, and a no-change re-sync.

Targets: peak RSS ≤ 250 MB through the first enumeration and plan (time reported); a no-change
re-sync moves 0 document bytes with ≤ 3 requests.

    .venv/bin/python bench/b3_large_tenant.py [--items 100000] [--full-sync] [--keep]

Three runs of the app, each a fresh process:

1. ``sync --dry-run`` with the whole drive selected: the first enumeration (delta) and the plan
   of every item, as the issue allows when uploading 100k files is too slow. Time to the
   "Planned:" line and the peak RSS then; the dry run then writes its manifest and prints it.
2. A real first ``sync`` of the same drive with the three archive folders (the ~99k filler
   items) unticked: it still enumerates and plans all 100k items, but copies only the demo
   yacht's own files. ``--full-sync`` copies everything instead (hours at today's speed).
3. A second real ``sync`` with nothing changed: Graph requests, bytes, and requests to
   every other service, counted by the simulators.
"""

from __future__ import annotations

import argparse
from typing import Any

import benchlib as b
import figures as fig

ARCHIVES = ("/08_MAINTENANCE/Archive", "/02_ENGINEERING/Archive", "/14_PHOTOS/Archive")


def planned(run: b.ProcessRun) -> dict[str, Any]:
    line = run.first_line("Planned:")
    return {
        "planned_line": line.text.strip() if line else None,
        "seconds_to_plan": round(line.at, 2) if line else None,
        "peak_rss_mb_at_plan": round(line.hwm_kib * 1024 / b.MB, 1) if line else None,
    }


def plan_text(run: b.ProcessRun) -> str:
    line = run.first_line("Planned:")
    if line is None:
        return "no plan line"
    return f"planned after {line.at:.0f} s at {line.hwm_kib * 1024 / b.MB:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="tenant size (default 100000)")
    parser.add_argument("--full-sync", action="store_true", help="copy every file in step 2 (slow)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    with b.workdir(args.keep) as root, b.sim_process(root / "sim", tenant_size=args.items) as sim:
        tenant = sim.control_state()
        dry_home = b.AppHome(root / "dry", sim.settings)
        dry_home.setup(["/"])
        before = sim.stats()
        dry = dry_home.sync("--dry-run", timeout=4 * 3600)
        dry_sim = sim.stats().minus(before)

        home = b.AppHome(root / "home", sim.settings)
        home.setup(["/"])
        if not args.full_sync:
            home.run("unselect", *ARCHIVES)
        before = sim.stats()
        first = home.sync(timeout=12 * 3600)
        first_sim = sim.stats().minus(before)
        first_status = home.status()

        sim.command("paths on")
        before = sim.stats()
        again = home.sync()
        again_sim = sim.stats().minus(before)
        paths = sim.command("paths")
        sim.command("paths off")

    uploads = [p for p in paths.get("supabase", []) if p.split()[0] in ("POST", "PUT", "PATCH")
               and p.split()[1].startswith(("/storage/v1/object/", "/storage/v1/upload/"))
               and not p.split()[1].startswith(("/storage/v1/object/move", "/storage/v1/object/copy"))]
    moved = again_sim["download"].requests > 0 or bool(uploads)
    non_graph = again_sim.requests - again_sim["graph"].requests
    # No download and no upload request: no document byte crossed. Otherwise count every byte
    # to the download host and into Supabase as an upper bound.
    document_bytes = again_sim["download"].bytes_out + again_sim["supabase"].bytes_in if moved else 0
    result: dict[str, Any] = {
        "title": "100,000-item tenant: first enumeration and plan, no-change re-sync",
        "workload": {
            "tenant_items": tenant.get("items"), "selection": "/ (whole drive)",
            "step2_selection": "/ (whole drive)" if args.full_sync else f"/ without {', '.join(ARCHIVES)}",
            "full_size": args.items == 100_000,
        },
        "first_enumeration_and_plan_dry_run": {
            **dry.summary(), **planned(dry),
            "graph_requests": dry_sim["graph"].requests, "graph_bytes_out": dry_sim["graph"].bytes_out,
        },
        "first_sync": {
            **first.summary(), **planned(first),
            "files_succeeded": first_status.get("files_succeeded"), "files_skipped": first_status.get("files_skipped"),
            "bytes_uploaded": first_status.get("bytes_uploaded"), "graph_requests": first_sim["graph"].requests,
        },
        "no_change_resync": {
            **again.summary(),
            "graph_requests": again_sim["graph"].requests,
            "graph_paths": paths.get("graph", []),
            "download_requests": again_sim["download"].requests,
            "storage_upload_requests": len(uploads),
            "total_requests": again_sim.requests,
            "supabase_requests": again_sim["supabase"].requests,
            "supabase_paths": paths.get("supabase", []),
            "entra_requests": again_sim["entra"].requests,
            "document_bytes_moved": document_bytes,
            "wire_bytes": again_sim.wire,
        },
    }
    peak = max(dry.peak_rss_mb, first.peak_rss_mb)
    targets = [
        fig.Target("peak RSS, first enumeration + plan (sync --dry-run)", dry.peak_rss_mb, 250, "<=", "MB",
                   figure=f"{dry.peak_rss_mb:.0f} MB ({plan_text(dry)})"),
        fig.Target("peak RSS, first real sync (all items enumerated and planned)", first.peak_rss_mb, 250, "<=", "MB",
                   figure=f"{first.peak_rss_mb:.0f} MB ({plan_text(first)}; {first.wall_s:.0f} s in all)"),
        fig.Target("no-change re-sync: Graph requests", again_sim["graph"].requests, 3, "<=",
                   figure=f"{again_sim['graph'].requests} (+{non_graph} to Supabase/Entra; {again.wall_s:.1f} s, "
                   f"{again.peak_rss_mb:.0f} MB)"),
        fig.Target("no-change re-sync: document bytes moved", document_bytes, 0, "<=", "bytes",
                   figure=f"{document_bytes}"),
    ]
    result["peak_rss_mb"] = round(peak, 1)
    fig.write_result("B3", result, targets, variant=None if args.items == 100_000 else f"{args.items}-items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
