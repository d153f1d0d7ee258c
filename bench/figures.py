"""Result files (``bench/results/<id>.json``), targets, and the machine the figures came from."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import REPO, RESULTS
from reference import curl_version

# -- machine and results --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with Path("/proc/meminfo").open() as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": os_name,
        "curl": curl_version(),
    }


def app_commit() -> str:
    """The commit the app was measured at (``-dirty`` when the working tree had changes)."""
    found = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or "unknown"


@dataclass
class Target:
    """One target of the issue, the value it is judged on, and its row in docs/performance.md."""

    name: str
    value: float | None
    limit: float
    kind: str  # ">=" or "<=" or "within"
    unit: str = ""
    tolerance: float = 0.0  # for "within": a relative band around limit
    figure: str = ""  # the app's figure as shown in the table, e.g. "34.6 MB/s (31.0 s)"
    reference: str = "—"  # the reference's figure, when the target compares with one

    @property
    def target_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "within":
            return f"{self.limit:g}{unit} ± {self.tolerance:.0%}"
        return f"{'≥' if self.kind == '>=' else '≤'} {self.limit:g}{unit}"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.kind == ">=":
            return self.value >= self.limit
        if self.kind == "<=":
            return self.value <= self.limit
        return abs(self.value - self.limit) <= self.tolerance * self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target_text, "met": self.met}


def write_result(
    bench_id: str, result: dict[str, Any], targets: Sequence[Target], *, variant: str | None = None
) -> Path:
    """Print the figures and write ``bench/results/<id>.json`` (``<id>-<variant>.json`` for a
    run at a reduced size, so it never overwrites the full-size figures)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "id": bench_id,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "app_commit": app_commit(),
        **result,
        "targets": [t.as_dict() for t in targets],
    }
    path = RESULTS / (f"{bench_id.lower()}-{variant}.json" if variant else f"{bench_id.lower()}.json")
    document["variant"] = variant or "full size"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    for target in targets:
        state = {True: "met", False: "MISSED", None: "not measured"}[target.met]
        shown = "-" if target.value is None else f"{target.value:.3f}"
        print(f"{bench_id} {target.name}: {shown} {target.unit} (target {target.target_text}) -> {state}")
    print(f"wrote {path}")
    return path


