"""B2: many small files (10,000 × 16 KiB by default), against curl at the same concurrency.

Target: files/s ≥ 0.8 × the reference, where the reference runs as many parallel curl workers
as the app's ``concurrency_small`` setting (default 4).

    .venv/bin/python bench/b2_small_files.py [--files 10000] [--size-kib 16] [--keep]

Files/s is files ÷ wall time of the whole ``celeste-desktop sync`` process (start-up,
enumeration, planning, transfers, size checks and registration of each file included). The
reference (download to a temporary file, then one POST with a known length, per file; each
worker one curl process reusing its connections) runs before and after the app; the ratio
uses their mean.
"""

from __future__ import annotations

import argparse
from statistics import mean
from typing import Any

import benchlib as b
import figures as fig
import reference as ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size-kib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4, help="the app's concurrency_small (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    size = args.size_kib * 1024
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        sim.control("add_folder", parent="/", name="bench-folder")
        sim.control("add_files", parent="/bench-folder", count=args.files, size=size, prefix="small-", extension=".bin")
        files = ref.list_files(sim.settings, "bench-folder", ref.graph_token(sim.settings))
        assert len(files) == args.files, f"listed {len(files)} files"
        app = b.AppHome(root / "home", sim.settings)
        app.setup(["/bench-folder"], {"concurrency_small": str(args.concurrency)})

        references = []
        before = sim.stats()
        references.append(ref.curl_reference(sim.settings, files, workers=args.concurrency, spool=root / "ref"))
        ref_sim = sim.stats().minus(before)

        before = sim.stats()
        run = app.sync()
        app_sim = sim.stats().minus(before)

        references.append(ref.curl_reference(sim.settings, files, workers=args.concurrency, spool=root / "ref"))
        failures = [f for r in references for f in r.failures]
        if failures:
            raise RuntimeError(f"the reference failed: {failures[:5]}")
        status = app.status()
        if status.get("files_succeeded") != args.files:
            raise RuntimeError(f"the app copied {status.get('files_succeeded')} of {args.files} files")

    total = args.files * size
    ref_wall = mean(r.wall_s for r in references)
    app_rate = args.files / run.wall_s
    ref_rate = args.files / ref_wall
    files_ratio = b.ratio(app_rate, ref_rate)
    result: dict[str, Any] = {
        "title": "many small files",
        "workload": {
            "files": args.files, "size_bytes": size, "bytes": total, "concurrency": args.concurrency,
            "full_size": args.files == 10_000 and args.size_kib == 16,
        },
        "app": {
            **run.summary(),
            "files_per_s": round(app_rate, 1),
            "cpu_s_per_gib": round(run.cpu_s / (total / b.GIB), 1),
            "cpu_ms_per_file": round(run.cpu_s / args.files * 1000, 2),
            "sim_cpu_s": round(app_sim.cpu_s, 2),
            # Share of the app's wall time the simulators' process spent on the CPU: near 1, the
            # simulators, not the app, set the pace.
            "sim_busy_share": round(app_sim.cpu_s / run.wall_s, 2),
            "requests": {name: counts.requests for name, counts in app_sim.servers.items()},
            "requests_per_file": round(app_sim.requests / args.files, 2),
            "wire_bytes_per_file": round(app_sim.wire / args.files),
        },
        "reference": {
            **references[0].summary(),
            "wall_s_each": [round(r.wall_s, 3) for r in references],
            "wall_s": round(ref_wall, 3),
            "files_per_s": round(ref_rate, 1),
            "curl_cpu_ms_per_file": round(mean(r.cpu_s for r in references) / args.files * 1000, 2),
            "sim_cpu_s": round(ref_sim.cpu_s, 2),
            "requests_per_file": round(ref_sim.requests / args.files, 2),
            "wire_bytes_per_file": round(ref_sim.wire / args.files),
        },
        "ratio": {"files_per_s": round(files_ratio or 0, 3)},
    }
    full = result["workload"]["full_size"] and args.concurrency == 4
    variant = None if full else f"{args.files}x{args.size_kib}kib-c{args.concurrency}"
    target = fig.Target(
        f"files/s ÷ reference ({args.files:,} × {args.size_kib} KiB, {args.concurrency} at a time)", files_ratio, 0.8,
        ">=", figure=f"{app_rate:.1f} files/s ({run.wall_s:.0f} s; {run.cpu_s / args.files * 1000:.1f} CPU ms/file)",
        reference=f"{ref_rate:.1f} files/s ({ref_wall:.1f} s)",
    )
    fig.write_result("B2", result, [target], variant=variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
