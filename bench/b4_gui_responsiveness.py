"""B4: the window's event loop while the GUI syncs the B2 workload (offscreen).

Targets: the longest stall of the GUI event loop ≤ 100 ms, its p99 ≤ 25 ms.

    .venv/bin/python bench/b4_gui_responsiveness.py [--files 10000] [--transfer-seconds 60] [--keep]

This process is the GUI: a ``QApplication`` (offscreen) with the qasync loop and the real
``gui.controller.Controller``, whose ``EngineHost`` runs the engine on its own thread. The
simulators run in another process. The home is prepared through the command line (settings,
device-code sign-in, ``select /bench-folder``); then, as an officer would: the controller starts,
Sync now runs the preview (a dry run of every file), Start begins the copy, which runs to the
end (``--transfer-seconds 0``) or for that many seconds and is then cancelled (60 s by default:
about half the files are copied, the other half are queued actions that the cancel unwinds, a
path an officer takes and one that stalled the window before), and the dry run's file list (one
row per file) is opened from the history.

A 5 ms precise ``QTimer`` on the GUI loop records the gap between its ticks: a gap is how long
the window could not react. Gaps are reported per phase and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib as b
import figures as fig

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication


class StallMeter:
    """Gaps between ticks of a 5 ms timer, per phase."""

    def __init__(self) -> None:
        self.gaps: dict[str, list[float]] = {}
        self.phase = "start"
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.setdefault(self.phase, []).append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @staticmethod
    def describe(gaps: list[float]) -> dict[str, Any]:
        if not gaps:
            return {"ticks": 0}
        ordered = sorted(gaps)
        return {
            "ticks": len(ordered),
            "median_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "over_100_ms": sum(1 for gap in ordered if gap > 0.1),
        }

    def report(self) -> dict[str, Any]:
        every = [gap for gaps in self.gaps.values() for gap in gaps]
        return {"overall": self.describe(every), **{phase: self.describe(g) for phase, g in self.gaps.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size-kib", type=int, default=16)
    parser.add_argument("--transfer-seconds", type=float, default=60.0,
                        help="copy for this long, then cancel (0: to the end)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    import qasync

    from celeste_desktop.config.paths import AppPaths
    from celeste_desktop.gui.controller import Controller, Hooks
    from celeste_desktop.gui.launch import vault_factory
    from celeste_desktop.support.logs import Redactor

    qapp = QApplication.instance() or QApplication([])
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        sim.control("add_folder", parent="/", name="bench-folder")
        sim.control("add_files", parent="/bench-folder", count=args.files, size=args.size_kib * 1024,
                    prefix="small-", extension=".bin")
        home = b.AppHome(root / "home", sim.settings)
        home.setup(["/bench-folder"])

        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        paths = AppPaths.resolve(Path(home.home))
        redactor = Redactor()
        controller = Controller(paths, vault_factory(paths, redactor), hooks=Hooks(), on_secret=redactor.add_secret,
                                loop=loop)
        # The preview dialog appears for a "large" first sync (over 500 files or 100 MB); always
        # show it, so a reduced run follows the same steps as the full one.
        controller.sync.preview_threshold = (0, 0)
        controller.window.show()

        def wait(condition: Callable[[], bool], what: str, seconds: float) -> None:
            async def poll() -> None:
                deadline = time.monotonic() + seconds
                while not condition():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")
                    await asyncio.sleep(0.02)

            loop.run_until_complete(poll())

        meter = StallMeter()
        timeline: dict[str, float] = {}
        started = time.perf_counter()
        try:
            meter.start()
            meter.phase = "start and sign-in check"
            loop.run_until_complete(controller.start())
            wait(lambda: controller.account is not None, "the saved account", 60)
            wait(lambda: not controller.sync.running and controller.engine is not None, "the engine", 60)
            meter.phase = "preview (dry run)"
            timeline["preview_started"] = time.perf_counter() - started
            controller.window.sync_button.click()
            wait(lambda: controller.preview_dialog is not None, "the preview of the first sync", 3600)
            timeline["preview_shown"] = time.perf_counter() - started
            dialog = controller.preview_dialog
            assert dialog is not None
            previewed = dialog.preview.files
            meter.phase = "transfer"
            objects_before = sim.command("objects")["count"]
            dialog.start_button.click()
            transfer_started = time.perf_counter()
            if args.transfer_seconds > 0:
                wait(lambda: not controller.sync.running or time.perf_counter() - transfer_started
                     > args.transfer_seconds, "the transfer window", args.transfer_seconds + 60)
            else:
                wait(lambda: not controller.sync.running, "the end of the sync", 24 * 3600)
            transfer_seconds = time.perf_counter() - transfer_started
            copied = sim.command("objects")["count"] - objects_before
            completed = not controller.sync.running
            if not completed:
                meter.phase = "cancel"
                controller.window.cancel_button.click()
                wait(lambda: not controller.sync.running, "the cancel", 120)
            loop.run_until_complete(controller.settled())
            meter.phase = "file list of the dry run"
            history = controller.window.history
            rows = history.model.rowCount()
            history.view.setCurrentIndex(history.model.index(rows - 1, 0))  # the oldest job: the dry run
            history.open_button.click()
            loop.run_until_complete(controller.settled())
            wait(lambda: controller.manifest_dialog is not None, "the file list", 120)
            manifest_rows = controller.manifest_dialog.model.rowCount() if controller.manifest_dialog else 0
            loop.run_until_complete(asyncio.sleep(0.5))
            meter.stop()
        finally:
            loop.run_until_complete(controller.shutdown())
            controller.window.close()
            controller.window.deleteLater()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            asyncio.set_event_loop(None)

    stalls = meter.report()
    overall = stalls["overall"]
    result: dict[str, Any] = {
        "title": "GUI event loop during the B2 workload (offscreen)",
        "workload": {
            "files": args.files, "size_bytes": args.size_kib * 1024, "previewed_files": previewed,
            "transfer": "to the end" if args.transfer_seconds <= 0 else f"{args.transfer_seconds:.0f} s, then cancel",
            "full_size": args.files == 10_000 and args.size_kib == 16,
        },
        "timeline_s": {k: round(v, 2) for k, v in timeline.items()},
        "transfer": {
            "seconds": round(transfer_seconds, 1), "files_copied": copied, "completed": completed,
            "files_per_s": round(copied / transfer_seconds, 1) if transfer_seconds else None,
        },
        "manifest_rows_shown": manifest_rows,
        "stalls": stalls,
        "note": "Gaps include the timer's own 5 ms period. The GUI, the engine thread and its worker "
        "threads share this process (and the GIL); the simulators run in another process.",
    }
    targets = [
        fig.Target("longest GUI stall", overall.get("max_ms"), 100, "<=", "ms", figure=f"{overall.get('max_ms')} ms"),
        fig.Target("p99 GUI stall", overall.get("p99_ms"), 25, "<=", "ms", figure=f"{overall.get('p99_ms')} ms"),
    ]
    variant = None if result["workload"]["full_size"] else f"{args.files}-files"
    fig.write_result("B4", result, targets, variant=variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
