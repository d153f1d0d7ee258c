"""``python -m celeste_desktop.sim``: start every simulator and print the settings JSON line.

The first line of standard output is one JSON object (``authority``, ``tenant``, ``client_id``,
``graph_url``, ``supabase_url``, ``supabase_anon_key``, ``supabase_key``, ``yacht_id``,
``ca_bundle``, ``data_dir``) that ``celeste-desktop config import`` accepts as is. The servers then
run until interrupted (Ctrl+C or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from celeste_desktop.sim.faults import FaultPlan, parse_spec
from celeste_desktop.sim.stack import SimStack


def parse_args(argv: list[str] | None = None, *, prog: str = "python -m celeste_desktop.sim") -> argparse.Namespace:
    """The options, checked (a bad fault SPEC or tenant size exits with a usage error)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Simulated Microsoft 365 (Entra ID, Graph) and Supabase on 127.0.0.1.",
        epilog="Fault SPEC: items separated by ';', e.g. "
        "'seed=7;link=2mbit/600ms;reset_every=50MB;graph:429=0.05/2;storage:503=0.02/1;*:500=0.01'. "
        "Services: entra, graph, download, storage, rest, *. Kinds: 429, 503, 500, reset, malformed, delay.",
    )
    parser.add_argument("--tenant-size", type=int, default=None, metavar="N", help="scale the demo tenant to N items")
    parser.add_argument("--auto-consent", action="store_true", help="approve sign-ins and device codes at once")
    parser.add_argument("--faults", default="", metavar="SPEC", help="inject faults (see below)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where objects and rows persist (default: a new temporary folder)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the demo tenant")
    args = parser.parse_args(argv)
    try:
        args.plan = parse_spec(args.faults) if args.faults else FaultPlan()
    except ValueError as exc:
        parser.error(str(exc))
    if args.tenant_size is not None and args.tenant_size < 1:
        parser.error("--tenant-size must be a positive number")
    return args


def start_stack(args: argparse.Namespace, *, temp_prefix: str = "celeste-sim-") -> SimStack:
    """Every simulator, started as the options say."""
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix=temp_prefix))
    return SimStack.start(
        data_dir=data_dir,
        tenant_size=args.tenant_size,
        auto_consent=args.auto_consent,
        faults=args.plan,
        seed=args.seed,
        device_code_interval_s=1 if args.auto_consent else 5,
    )


def serve(stack: SimStack, *, beside: Callable[[threading.Event], None] | None = None) -> int:
    """Print the settings JSON line, then serve until SIGINT/SIGTERM (or until ``beside``, run in
    a thread of its own, sets the event it is given); the stack is stopped on the way out."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sys.stdout.write(json.dumps(stack.settings_json()) + "\n")
    sys.stdout.flush()
    if beside is not None:
        threading.Thread(target=beside, args=(stop,), name="sim-beside", daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(start_stack(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
