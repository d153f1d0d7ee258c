"""Writes the figures table of docs/performance.md from bench/results/*.json.

    .venv/bin/python bench/report.py

Only the part between the ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` markers is
replaced; the prose around it is kept. For each benchmark the full-size result
(``<id>.json``) is used when there is one, otherwise the newest reduced-size one, marked so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchlib import REPO, RESULTS

DOC = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")


def pick(bench_id: str) -> dict[str, Any] | None:
    full = RESULTS / f"{bench_id.lower()}.json"
    if full.exists():
        loaded: dict[str, Any] = json.loads(full.read_text())
        return loaded
    reduced = sorted(RESULTS.glob(f"{bench_id.lower()}-*.json"), key=lambda p: p.stat().st_mtime)
    if reduced:
        newest: dict[str, Any] = json.loads(reduced[-1].read_text())
        return newest
    return None


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ratio(target: dict[str, Any]) -> str:
    value = target.get("value")
    if value is None:
        return "—"
    if "÷" in target["name"]:
        return f"{value:.3f}"
    return "—"


def render() -> str:
    lines = [
        "| id | figure | app | reference | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    machines: dict[str, dict[str, Any]] = {}
    for bench_id in IDS:
        result = pick(bench_id)
        if result is None:
            lines.append(f"| {bench_id} | not measured yet | — | — | — | — | — |")
            continue
        machines[bench_id] = result["machine"]
        size = "" if result.get("variant") in (None, "full size") else f" *(reduced: {result['variant']})*"
        for target in result["targets"]:
            met = {True: "yes", False: "**no**", None: "—"}[target["met"]]
            lines.append(
                f"| {bench_id} | {_cell(target['name'])}{size} | {_cell(target.get('figure') or target['value'])} "
                f"| {_cell(target.get('reference', '—'))} | {_ratio(target)} | {_cell(target.get('target', ''))} "
                f"| {met} |"
            )
    lines.append("")
    distinct = {json.dumps(m, sort_keys=True) for m in machines.values()}
    for text in sorted(distinct):
        machine = json.loads(text)
        ids = ", ".join(k for k, m in machines.items() if json.dumps(m, sort_keys=True) == text)
        lines.append(
            f"Machine ({ids}): {machine['nproc']} CPUs, {machine['cpu']}, {machine['memory_gib']} GiB RAM, "
            f"Python {machine['python']}, {machine['os']}; reference tool {machine['curl'].split(' (')[0]}."
        )
    picked = {bench_id: pick(bench_id) for bench_id in machines}
    dates = sorted(str(result["measured_at"]) for result in picked.values() if result)
    if dates:
        lines.append(f"Measured {dates[0]} – {dates[-1]} (UTC).")
    commits: dict[str, list[str]] = {}
    for bench_id, result in picked.items():
        commits.setdefault(str((result or {}).get("app_commit", "unknown")), []).append(bench_id)
    lines.append("App commit: " + "; ".join(f"{commit} ({', '.join(ids)})" for commit, ids in commits.items()) + ".")
    return "\n".join(lines)


def main() -> int:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}")
    print(f"wrote the figures into {Path(DOC).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
