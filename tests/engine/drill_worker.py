"""Subprocess entry of the fault drill: the app's command line, killed outright at a named step.

    python tests/engine/drill_worker.py --crash-after POINT:N -- --home H sync

runs ``celeste-desktop --home H sync`` in this process and sends itself SIGKILL the moment the
``N``-th call of the crash point returns: no handler, ``finally`` or flush runs, exactly as when
the power goes. The points are the steps between which a sync must survive a kill (see
``CRASH_POINTS``); nothing else of the app is changed.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

# Step name -> (module, class, method). Each is a moment when one thing is done and the next
# not begun, which a restart must recognise.
CRASH_POINTS: dict[str, tuple[str, str, str]] = {
    # A file's spool is complete; nothing is uploaded yet.
    "downloaded": ("celeste_desktop.graph.download", "Downloader", "download"),
    # The object is in storage; the local state does not know yet.
    "uploaded": ("celeste_desktop.compose", "SupabaseSink", "upload"),
    # One TUS chunk is confirmed by the server; the rest is not sent.
    "tus_chunk": ("celeste_desktop.compose", "StateTusCheckpoints", "save"),
    # doc_metadata and search_index rows exist; the state still says "registering".
    "registered": ("celeste_desktop.compose", "SupabaseSink", "register"),
    # The state says delivered; the job's manifest has no row for the file yet.
    "delivered": ("celeste_desktop.store.db", "StateDB", "mark_delivered"),
    # The manifest row is written; the shore-side status is not queued yet.
    "manifested": ("celeste_desktop.store.db", "StateDB", "add_manifest_rows"),
}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, after_calls: int) -> None:
    """Kill this process when the ``after_calls``-th call of ``point`` has returned."""
    module_name, class_name, method_name = CRASH_POINTS[point]
    module = __import__(module_name, fromlist=[class_name])
    owner = getattr(module, class_name)
    original: Callable[..., Any] = getattr(owner, method_name)
    calls = 0

    def count() -> None:
        nonlocal calls
        calls += 1
        if calls >= after_calls:
            die()

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            count()
            return result

        setattr(owner, method_name, async_wrapper)
    else:

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            count()
            return result

        setattr(owner, method_name, wrapper)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="drill_worker")
    parser.add_argument("--crash-after", required=True, metavar="POINT:N")
    parser.add_argument("app_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    point, _, count = args.crash_after.partition(":")
    arm(point, int(count or "1"))
    from celeste_desktop.app import main as app_main

    app_args = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    return app_main(app_args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
