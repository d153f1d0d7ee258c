"""B7: the satellite profile: 600 ms round trip, 2 Mbit/s each way, a connection reset every
50 MB on average.

Targets: the selection completes (every file delivered and identical to its source); goodput
(document bytes ÷ wall time of the sync) ≥ 0.85 × the link rate.

    .venv/bin/python bench/b7_satellite.py [--extra-files 3] [--extra-mib 3] [--seed 7] [--keep]

The simulators run with ``--faults 'link=2mbit/600ms;reset_every=50MB;seed=N'`` (one shared
link for every service, both directions paced separately). The selection is the demo tenant's
01_BRIDGE and 04_MANUALS (~1.8 MB of PDFs and Office files) plus a few larger PDFs in
01_BRIDGE/Bench, so a run takes a few minutes. The reference, curl at the same concurrency
(the app's concurrency_small, default 4) copying the same files over the same link, runs
after the app, with ``--retry`` so a reset restarts the broken transfer.

The resets are random with a mean of 50 MB of server-to-client bytes between them, so a run of
~12 MB downstream would often see none. Seed 1 draws the first reset at 7.2 MB: inside the
app's run, in the middle of the larger downloads.
"""

from __future__ import annotations

import argparse
from typing import Any

import benchlib as b
import figures as fig
import reference as ref

LINK_RATE = 250_000  # 2 Mbit/s in bytes/s, as the simulators' shaper reads "2mbit"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra-files", type=int, default=3, help="larger PDFs added to 01_BRIDGE/Bench")
    parser.add_argument("--extra-mib", type=float, default=3.0, help="size of each, MiB")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random resets (see above)")
    parser.add_argument("--concurrency", type=int, default=4, help="the app's concurrency_small (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    faults = f"link=2mbit/600ms;reset_every=50MB;seed={args.seed}"
    with b.workdir(args.keep) as root, b.sim_process(root / "sim", faults=faults) as sim:
        sim.control("add_folder", parent="/01_BRIDGE", name="Bench")
        for number in range(1, args.extra_files + 1):
            sim.control("add_file", parent="/01_BRIDGE/Bench", name=f"Chart Portfolio {number}.pdf",
                        size=int(args.extra_mib * b.MIB), seed=100 + number)
        token = ref.graph_token(sim.settings)
        files = ref.list_files(sim.settings, "01_BRIDGE", token) + ref.list_files(sim.settings, "04_MANUALS", token)
        app = b.AppHome(root / "home", sim.settings)
        app.setup(["/01_BRIDGE", "/04_MANUALS"], {"concurrency_small": str(args.concurrency)})

        objects_before = sim.command("objects")
        faults_before = sim.command("faults")
        before = sim.stats()
        run = app.sync(check=False, timeout=3600)
        app_sim = sim.stats().minus(before)
        objects_after = sim.command("objects")
        faults_app = sim.command("faults")
        check = sim.command("check")
        status = app.status()

        before = sim.stats()
        reference = ref.curl_reference(sim.settings, files, workers=args.concurrency, spool=root / "ref",
                                       retries=5)
        ref_sim = sim.stats().minus(before)
        faults_ref = sim.command("faults")

    documents = objects_after["bytes"] - objects_before["bytes"]
    goodput = documents / run.wall_s
    ref_goodput = reference.bytes / reference.wall_s
    resets = {k: v - faults_before.get(k, 0) for k, v in faults_app.items() if v - faults_before.get(k, 0)}
    completed = run.returncode == 0 and not check["mismatched"] and not check["missing"] and status.get(
        "files_failed") == 0
    result: dict[str, Any] = {
        "title": "satellite profile",
        "workload": {
            "faults": faults, "selection": ["/01_BRIDGE", "/04_MANUALS"],
            "extra_files": args.extra_files, "extra_file_bytes": int(args.extra_mib * b.MIB),
            "files": status.get("files_succeeded"), "document_bytes": documents, "link_rate_bytes_s": LINK_RATE,
            "full_size": True,
        },
        "app": {
            **run.summary(),
            "completed": completed,
            "files_failed": status.get("files_failed"),
            "goodput_bytes_s": round(goodput),
            "goodput_to_link_rate": round(goodput / LINK_RATE, 3),
            "faults_injected": resets,
            "requests": {name: counts.requests for name, counts in app_sim.servers.items()},
            "connections": {name: counts.connections for name, counts in app_sim.servers.items()},
            "wire_bytes": app_sim.wire,
            "check": {"checked": check["checked"], "mismatched": check["mismatched"], "missing": check["missing"]},
        },
        "reference": {
            **reference.summary(),
            "goodput_bytes_s": round(ref_goodput),
            "goodput_to_link_rate": round(ref_goodput / LINK_RATE, 3),
            "requests": {name: counts.requests for name, counts in ref_sim.servers.items()},
            "failure_messages": reference.failures[:5],
            "faults_injected": {k: v - faults_app.get(k, 0) for k, v in faults_ref.items() if v - faults_app.get(k, 0)},
        },
        "ratio": {"goodput_to_reference": round(goodput / ref_goodput, 3)},
    }
    targets = [
        fig.Target("the selection completes and matches its source", float(completed), 1, ">=",
                   figure=f"{'yes' if completed else 'no'} ({status.get('files_succeeded')} files, "
                   f"{sum(resets.values())} reset{'s' if sum(resets.values()) != 1 else ''} survived)"),
        fig.Target("goodput ÷ link rate (2 Mbit/s)", goodput / LINK_RATE, 0.85, ">=",
                   figure=f"{goodput * 8 / 1e6:.2f} Mbit/s ({documents / b.MB:.1f} MB in {run.wall_s:.0f} s)",
                   reference=f"{ref_goodput * 8 / 1e6:.2f} Mbit/s ({reference.wall_s:.0f} s)"),
    ]
    fig.write_result("B7", result, targets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
