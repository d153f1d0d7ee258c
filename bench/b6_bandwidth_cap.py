"""B6: an upload cap of 1 MiB/s held for a minute.

Target: the achieved upload rate is within ±5 % of the cap.

    .venv/bin/python bench/b6_bandwidth_cap.py [--seconds 60] [--limit-kib 1024] [--keep]

The app copies one file of (cap × seconds) bytes with ``upload_limit`` set (downloads are not
capped, so the download takes a second or two and the upload the rest). The simulators'
counter of bytes received by Supabase (headers included) is sampled every 0.25 s; the
achieved rate is the bytes received between the first and the last sample that saw growth,
divided by that time. The rates of whole one-second windows are reported too, to show how
steady the cap is. For scale, curl's own ``--limit-rate`` is measured the same way.
"""

from __future__ import annotations

import argparse
from statistics import mean
from typing import Any

import benchlib as b
import figures as fig
import reference as ref


def upload_rate(sampler: b.StatsSampler) -> dict[str, Any]:
    span = sampler.active_span(lambda s: s["supabase"].bytes_in, threshold=1)
    if span is None:
        return {}
    first, last, moved = span
    seconds = last - first
    # Rates of whole one-second windows inside the span (steadiness).
    windows: list[float] = []
    points = [(at, stats["supabase"].bytes_in) for at, stats in sampler.samples if first <= at <= last]
    index = 0
    for at, value in points:
        while index < len(points) and points[index][0] < at + 1.0:
            index += 1
        if index >= len(points):
            break
        end_at, end_value = points[index]
        windows.append((end_value - value) / (end_at - at))
    return {
        "seconds": round(seconds, 2),
        "bytes": moved,
        "rate_bytes_s": round(moved / seconds),
        "one_second_windows": {
            "count": len(windows),
            "min": round(min(windows)) if windows else None,
            "mean": round(mean(windows)) if windows else None,
            "max": round(max(windows)) if windows else None,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="how long the capped upload should last")
    parser.add_argument("--limit-kib", type=int, default=1024, help="the cap in KiB/s (default 1024 = 1 MiB/s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    cap = args.limit_kib * 1024
    size = cap * args.seconds
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        sim.control("add_folder", parent="/", name="bench-folder")
        sim.control("add_file", parent="/bench-folder", name="capped.bin", size=size, seed=5)
        files = ref.list_files(sim.settings, "bench-folder", ref.graph_token(sim.settings))
        app = b.AppHome(root / "home", sim.settings)
        app.setup(["/bench-folder"], {"upload_limit": f"{args.limit_kib}KiB/s"})
        with b.StatsSampler(sim, 0.25) as sampler:
            run = app.sync(timeout=args.seconds * 5 + 120)
        achieved = upload_rate(sampler)
        # curl's own cap, for scale (applied to both directions by --limit-rate; only the
        # upload is read here).
        with b.StatsSampler(sim, 0.25) as sampler:
            reference = ref.curl_reference(sim.settings, files, workers=1, spool=root / "ref", limit_rate=cap)
        reference_rate = upload_rate(sampler)
    rate = achieved.get("rate_bytes_s")
    result: dict[str, Any] = {
        "title": "bandwidth cap",
        "workload": {"bytes": size, "cap_bytes_s": cap, "seconds_at_cap": args.seconds,
                     "full_size": args.seconds == 60 and args.limit_kib == 1024},
        "app": {**run.summary(), "upload": achieved},
        "reference": {**reference.summary(), "upload": reference_rate,
                      "rate_ratio_to_cap": round(reference_rate["rate_bytes_s"] / cap, 4) if reference_rate else None},
        "ratio": {"achieved_to_cap": round(rate / cap, 4) if rate else None},
    }
    reference_text = f"curl --limit-rate: {reference_rate['rate_bytes_s'] / cap:.3f} × cap" if reference_rate else "—"
    target = fig.Target(
        f"achieved upload rate ÷ cap ({args.limit_kib} KiB/s for {args.seconds} s)", rate / cap if rate else None, 1.0,
        "within", tolerance=0.05, reference=reference_text,
        figure=f"{rate / 1024:.0f} KiB/s over {achieved['seconds']:.0f} s" if rate else "no upload seen",
    )
    targets = [target]
    variant = None if result["workload"]["full_size"] else f"{args.seconds}s-{args.limit_kib}kib"
    fig.write_result("B6", result, targets, variant=variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
