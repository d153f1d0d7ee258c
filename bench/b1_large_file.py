"""B1: one large file (1 GiB by default), OneDrive → Supabase over TUS, against curl.

Targets: throughput ≥ 0.8 × the curl reference; the app's peak RSS ≤ 200 MB.

    .venv/bin/python bench/b1_large_file.py [--size-mib 1024] [--keep]

The reference (one curl process: download to a temporary file, then one POST with a known
length) runs before and after the app; the ratio uses their mean. The simulators' counters,
sampled every 0.1 s, split each run into its download and upload phases. Throughput is document
bytes ÷ wall time of the whole ``celeste-desktop sync`` process (start-up, listing, planning,
download, hashing, TUS upload, size check and registration included).
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
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    size = args.size_mib * b.MIB
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        sim.control("add_folder", parent="/", name="bench-folder")
        sim.control("add_file", parent="/bench-folder", name="large.bin", size=size, seed=11)
        files = ref.list_files(sim.settings, "bench-folder", ref.graph_token(sim.settings))
        app = b.AppHome(root / "home", sim.settings)
        app.setup(["/bench-folder"])

        references = []
        before = sim.stats()
        with b.StatsSampler(sim, 0.1) as sampler:
            references.append(ref.curl_reference(sim.settings, files, workers=1, spool=root / "ref"))
        ref_sim = sim.stats().minus(before)
        ref_phases = b.phase_rates(sampler)

        before = sim.stats()
        with b.StatsSampler(sim, 0.1) as sampler:
            run = app.sync()
        app_sim = sim.stats().minus(before)
        app_phases = b.phase_rates(sampler)

        references.append(ref.curl_reference(sim.settings, files, workers=1, spool=root / "ref"))
        failures = [f for r in references for f in r.failures]
        if failures:
            raise RuntimeError(f"the reference failed: {failures[:5]}")
        status = app.status()

    ref_wall = mean(r.wall_s for r in references)
    app_rate = size / run.wall_s
    ref_rate = size / ref_wall
    throughput_ratio = b.ratio(app_rate, ref_rate)
    result: dict[str, Any] = {
        "title": "one large file, OneDrive → Supabase over TUS",
        "workload": {"files": 1, "bytes": size, "size_mib": args.size_mib, "full_size": args.size_mib == 1024},
        "app": {
            **run.summary(),
            "throughput_mb_s": round(app_rate / b.MB, 2),
            "cpu_s_per_gib": round(run.cpu_s / (size / b.GIB), 2),
            "files_succeeded": status.get("files_succeeded"),
            "sim_cpu_s": round(app_sim.cpu_s, 2),
            "wire_bytes": app_sim.wire,
            "requests": {name: counts.requests for name, counts in app_sim.servers.items()},
            "phases": app_phases,
        },
        "reference": {
            **references[0].summary(),
            "wall_s_each": [round(r.wall_s, 3) for r in references],
            "wall_s": round(ref_wall, 3),
            "throughput_mb_s": round(ref_rate / b.MB, 2),
            "curl_cpu_s_per_gib": round(mean(r.cpu_s for r in references) / (size / b.GIB), 2),
            "sim_cpu_s": round(ref_sim.cpu_s, 2),
            "wire_bytes": ref_sim.wire,
            "phases_first_run": ref_phases,
        },
        "ratio": {"throughput": round(throughput_ratio or 0, 3)},
    }
    cpu_per_gib = run.cpu_s / (size / b.GIB)
    targets = [
        fig.Target("throughput ÷ reference", throughput_ratio, 0.8, ">=",
                   figure=f"{app_rate / b.MB:.1f} MB/s ({run.wall_s:.1f} s; {cpu_per_gib:.1f} CPU s/GiB)",
                   reference=f"{ref_rate / b.MB:.1f} MB/s ({ref_wall:.1f} s)"),
        fig.Target("peak RSS", run.peak_rss_mb, 200, "<=", "MB", figure=f"{run.peak_rss_mb:.0f} MB"),
    ]
    fig.write_result("B1", result, targets, variant=None if args.size_mib == 1024 else f"{args.size_mib}mib")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
