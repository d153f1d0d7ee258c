"""The simulators in a process of their own, as ``python -m celeste_desktop.sim`` runs them, plus
the servers' byte and request counters on demand.

The stock entry point has no way to read ``SimServer.stats`` from another process, and the
benchmarks need them (bytes on the wire, requests of a no-change sync). This wrapper builds the
very same ``SimStack`` with the same options, prints the same settings JSON as its first line,
then answers one command per line on standard input with one JSON line on standard output:

    stats          {"entra": {"requests", "bytes_in", "bytes_out", "connections"}, ..., "cpu_s"}
    reset          zero every counter
    paths on|off   record "METHOD /path" of every request (then ``paths`` lists them)
    paths          {"graph": [...], ...}
    faults         the faults injected so far, counted by service and kind
    objects        {"count", "bytes"} of the objects stored in the documents bucket
    check          compares every registered object with its OneDrive source, byte for byte
                   (SHA-256 of the stored object against the simulated file's content):
                   {"checked", "mismatched": [...], "missing": [...]}

It stops at end of input (the benchmark closing the pipe) or on SIGTERM / SIGINT.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import threading
from collections import Counter
from typing import Any

from celeste_desktop.sim.__main__ import parse_args, serve, start_stack
from celeste_desktop.sim.stack import SimStack


def _answer(stack: SimStack, line: str) -> Any:
    words = line.split()
    if not words:
        return {"error": "empty command"}
    command = words[0]
    if command == "stats":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        counts: dict[str, Any] = {
            name: {
                "requests": server.stats.requests,
                "bytes_in": server.stats.bytes_in,
                "bytes_out": server.stats.bytes_out,
                "connections": server.stats.connections,
            }
            for name, server in stack.servers.items()
        }
        counts["cpu_s"] = usage.ru_utime + usage.ru_stime
        return counts
    if command == "reset":
        stack.reset_stats()
        return {"ok": True}
    if command == "paths" and len(words) == 2:
        for server in stack.servers.values():
            server.record_paths = words[1] == "on"
        return {"ok": True}
    if command == "paths":
        return {name: list(server.stats.paths) for name, server in stack.servers.items()}
    if command == "objects":
        stored = stack.supabase.list_objects("documents")
        return {"count": len(stored), "bytes": sum(obj.size for obj in stored)}
    if command == "check":
        return _check(stack)
    if command == "faults":
        injected = Counter(f"{service}:{kind}" for service, kind in list(stack.faults.injected))
        return dict(injected)
    return {"error": f"unknown command {command!r}"}


def _check(stack: SimStack) -> dict[str, Any]:
    graph = stack.graph
    mismatched: list[str] = []
    missing: list[str] = []
    rows = [row for row in stack.supabase.rows("doc_metadata") if not row.get("deleted_at")]
    for row in rows:
        original = str(row["original_path"])
        try:
            item = graph.find("/" + original)
        except Exception:
            missing.append(f"{original}: not in the tenant")
            continue
        try:
            path = stack.supabase.object_path("documents", str(row["storage_path"]))
        except KeyError:
            missing.append(f"{original}: no object")
            continue
        source = hashlib.sha256()
        for chunk in graph.synth.iter_bytes(graph.synth.build(item)):
            source.update(chunk)
        stored = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                stored.update(block)
        if stored.hexdigest() != source.hexdigest():
            mismatched.append(original)
    return {"checked": len(rows), "mismatched": mismatched, "missing": missing}


def main(argv: list[str] | None = None) -> int:
    stack = start_stack(parse_args(argv, prog="bench/simproc.py"), temp_prefix="celeste-bench-sim-")

    def serve_commands(stop: threading.Event) -> None:
        for line in sys.stdin:
            sys.stdout.write(json.dumps(_answer(stack, line.strip())) + "\n")
            sys.stdout.flush()
        stop.set()

    return serve(stack, beside=serve_commands)

if __name__ == "__main__":
    raise SystemExit(main())
