"""Offline first (issue 11): with every service down, the window opens at once on the state last
seen (folders, ticks, history, problems), says that it is offline, re-checks the link with
backoff rather than hammering it, and finishes the interrupted sync by itself when the link is
back, with no click."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_controller_harness import Harness, configure, controller_harness, tenant_files

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.engine.offline import LinkBackoff
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.store.db import open_state

BROKEN = "/01_BRIDGE/Navigation/Navigation Procedures.pdf"
LARGE = "04_MANUALS/Navigation/ECDIS Chart Updater.zip"  # 717 KiB: seconds on the slowed link


class DeadPort:
    """A stopped service's port: every connection is accepted and dropped at once, and counted
    (the app sees a failed TLS handshake, as with a link that goes nowhere)."""

    def __init__(self, port: int) -> None:
        self.times: list[float] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(16)
        self._socket.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dead-port", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _address = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def __enter__(self) -> DeadPort:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def top_level(harness: Harness) -> dict[str, Qt.CheckState | None]:
    model = harness.window.picker.model
    shown: dict[str, Qt.CheckState | None] = {}
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        item = model.item(index)
        if item is not None:
            shown[item.name] = model.check_state(index)
    return shown


def partly_downloaded(spool: Path) -> bool:
    for path in spool.rglob("*.part"):
        with contextlib.suppress(FileNotFoundError):  # a finished file's spool goes at once
            if path.stat().st_size > 64 * 1024:
                return True
    return False


def build_state(qapp: QApplication, sim: SimStack, home: Path) -> str:
    """One finished sync with a parked file, then a second sync interrupted mid-transfer by the
    app's stop; returns the interrupted job's id."""
    with controller_harness(qapp, sim, home, quick_clock=True) as first:
        window, controller = first.window, first.controller
        first.start_signed_in()
        first.tick("01_BRIDGE")
        sim.graph.corrupt(sim.graph.find(BROKEN).id)
        job = first.run(controller.sync_now())
        assert job is not None and job.status is JobStatus.PARTIAL
        first.tick("04_MANUALS")
        spool = AppPaths.resolve(home).spool_dir
        sim.faults.link = LinkShaper(150_000, 0.0)
        window.sync_button.click()
        first.wait(
            lambda: partly_downloaded(spool),
            "a large file partly downloaded",
        )
        assert controller.sync.running
    sim.faults.link = None  # the harness's stop interrupted the sync, as closing the app does
    state = open_state(AppPaths.resolve(home).state_db)
    try:
        interrupted = [job for job in state.jobs(10) if job.status is JobStatus.RUNNING]
    finally:
        state.close()
    assert len(interrupted) == 1
    return interrupted[0].job_id


def test_offline_start_shows_the_last_state_and_finishes_the_interrupted_sync(
    qapp: QApplication, sim: SimStack, sim_home: Path
) -> None:
    configure(sim_home, max_attempts=1)
    interrupted = build_state(qapp, sim, sim_home)
    expected = tenant_files(sim, "01_BRIDGE", "04_MANUALS") - {BROKEN.lstrip("/")}
    stored_before = len(sim.supabase.rows("doc_metadata"))
    assert LARGE not in {str(row["original_path"]) for row in sim.supabase.rows("doc_metadata")}
    assert stored_before < len(expected)

    sim.take_offline()
    with DeadPort(sim.servers["supabase"].port) as dead, controller_harness(qapp, sim, sim_home, quick_clock=True) as h:
        window, controller = h.window, h.controller
        controller.link_backoff = LinkBackoff(first=20.0)  # 0.2 s, 0.4 s, 0.8 s … on the quick clock
        started = time.monotonic()
        h.run(controller.start())
        h.wait(lambda: bool(top_level(h)), "the folders as last seen", seconds=2.0 - (time.monotonic() - started))
        assert time.monotonic() - started < 2.0, "the window shows the last known state within 2 s"

        folders = top_level(h)
        assert folders["01_BRIDGE"] is Qt.CheckState.Checked
        assert folders["04_MANUALS"] is Qt.CheckState.Checked
        assert folders["02_ENGINEERING"] is Qt.CheckState.Unchecked
        jobs = window.history.model.records()
        assert [job.job_id for job in jobs][:1] == [interrupted]
        assert [job.status for job in jobs if not job.dry_run] == [JobStatus.RUNNING, JobStatus.PARTIAL]
        parked = [p for p in window.problems.model.records() if p.kind is FileProblemKind.DEAD_LETTER]
        assert [p.path for p in parked] == [BROKEN.lstrip("/")]

        assert window.connection_label.text() == "Offline — waiting for the connection"
        assert "offline" in window.banner.shown()
        assert not controller.sync.running, "nothing is tried while the link is known to be down"

        # The quick clock divides waits by 100: checks 20, 40, 80, 160 s apart take ~3 s.
        h.pump(3.5)
        checks = list(dead.times)
        gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
        assert 3 <= len(checks) <= 6, f"link checks in 3.5 s: {len(checks)}"
        assert all(gap > 0.15 for gap in gaps), gaps
        assert all(later > 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
        assert not controller.sync.running and len(sim.supabase.rows("doc_metadata")) == stored_before

        window.sync_button.click()  # actions that need the network say so (and Connect checks at once)
        h.run(controller.settled())
        assert "needs the network; the app is offline" in window.statusBar().currentMessage()
        window.connect_button.click()
        h.run(controller.settled())
        assert "needs the network; the app is offline" in window.banner.text("error")
        assert not controller.sync.running

        dead.close()
        sim.bring_online()  # the link is back on the same addresses; nobody clicks anything
        h.wait(lambda: controller.sync.running, "the interrupted sync to start by itself", seconds=15)
        h.finish_sync()
        assert set(h.rows()) == expected
        assert h.objects() == len(expected)
        last = window.history.model.records()[0]
        assert last.job_id == interrupted and last.status is JobStatus.COMPLETED
        assert window.connection_label.text() == "Connected"
        assert "offline" not in window.banner.shown()
