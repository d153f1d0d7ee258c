"""``sync``, ``folders``, ``select``, ``unselect``, ``status --json`` and ``diagnostics``.

For Task Scheduler, cron, support engineers and our own checks. ``sync`` prints a progress bar
on a terminal and plain lines otherwise. Exit codes: 0 all files succeeded or were skipped with
a reason; 1 some failed (or the link stayed down); 2 a configuration or sign-in problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from filelock import FileLock, Timeout

from celeste_desktop.cli.context import CliContext
from celeste_desktop.compose import Services, open_services
from celeste_desktop.domain.errors import CelesteError, ConfigError, NotFound, SignInRequired
from celeste_desktop.domain.models import Drive, JobStatus, SelectionEntry
from celeste_desktop.engine.events import (
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    JobFinished,
    JobPlanned,
    Paused,
    PauseReason,
    Resumed,
    Throughput,
)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_BUDGET = 0, 1, 2, 3


def _human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(nbytes) < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} GB"


@contextlib.asynccontextmanager
async def services_for(context: CliContext) -> AsyncIterator[Services]:
    services = open_services(context.paths, context.settings, context.secrets(), on_secret=context.redactor.add_secret)
    try:
        yield services
    finally:
        await services.aclose()


async def ensure_account(services: Services) -> None:
    account = services.session.current_account()
    if account is None:
        raise SignInRequired("Not signed in to Microsoft 365: run `celeste-desktop login` (or `login --device-code`).")
    services.state.set_account(account.username, account.tenant_id or "")


async def default_drive(services: Services) -> Drive:
    drives = services.state.drives()
    if drives:
        return drives[0]
    drive = await services.graph.my_drive()
    services.state.save_drive(drive)
    return drive


class ProgressPrinter:
    """Turns engine events into terminal output: a live bar on a TTY, plain lines otherwise."""

    def __init__(self, out: TextIO, on_budget: Callable[[Paused], None] | None = None) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._last_plain = 0.0
        self._bar_shown = False
        self._on_budget = on_budget  # told when the data budget pauses the sync

    def __call__(self, event: Event) -> None:
        if isinstance(event, Throughput):
            self._throughput(event)
        elif isinstance(event, JobPlanned):
            self._line(f"Planned: {event.files} files, {_human(event.bytes)} to copy ({event.skipped} skipped).")
        elif isinstance(event, FileDone):
            if not self.tty:
                self._line(f"done     {event.path}" + (f" ({event.note})" if event.note else ""))
        elif isinstance(event, FileFailed):
            self._line(
                f"FAILED   {event.path}: {event.message}" + (" (will retry)" if event.will_retry else " (parked)")
            )
        elif isinstance(event, FileSkipped):
            if not self.tty:
                self._line(f"skipped  {event.path}: {event.message}")
        elif isinstance(event, Paused):
            self._line(f"paused: {event.message}")
            if event.reason is PauseReason.BUDGET and self._on_budget is not None:
                self._on_budget(event)
        elif isinstance(event, Resumed):
            self._line(f"resumed ({event.reason.value})")
        elif isinstance(event, JobFinished):
            self._line(event.summary + (f" {event.error}" if event.error else ""))

    def _throughput(self, event: Throughput) -> None:
        eta = f", about {event.eta_seconds / 60:.0f} min left" if event.eta_seconds else ""
        text = (
            f"{event.files_done}/{event.files_total} files, {_human(event.bytes_done)} of {_human(event.bytes_total)}"
            f" at {_human(event.bytes_per_second)}/s{eta}"
        )
        if self.tty:
            width = 24
            share = event.bytes_done / event.bytes_total if event.bytes_total else 1.0
            filled = int(width * min(1.0, share))
            self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
            self.out.flush()
            self._bar_shown = True
        elif time.monotonic() - self._last_plain >= 5.0:
            self._last_plain = time.monotonic()
            self._line(text)

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.out.write("\r\x1b[K")
            self._bar_shown = False
        self.out.write(text + "\n")
        self.out.flush()


def sync(context: CliContext, dry_run: bool, out: TextIO) -> int:
    lock = FileLock(str(context.paths.data_dir / "sync.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        out.write("Another sync is running on this PC (the window or a scheduled run); try again when it ends.\n")
        return EXIT_FAILED
    try:
        return asyncio.run(_sync(context, dry_run, out))
    finally:
        lock.release()


async def _sync(context: CliContext, dry_run: bool, out: TextIO) -> int:
    async with services_for(context) as services:
        await ensure_account(services)
        if not services.state.selection():
            raise ConfigError("selection", "no folders are selected: run `celeste-desktop select PATH` first")
        budget_stop: list[Paused] = []

        def stop_at_budget(event: Paused) -> None:
            # A run from the command line (Task Scheduler, cron) does not sit for days holding the
            # sync lock, blind to a budget raised in the window meanwhile: it stops, keeping what
            # crossed, and the next run carries on from there.
            if not budget_stop:
                budget_stop.append(event)
                asyncio.get_running_loop().call_soon(engine.cancel)

        printer = ProgressPrinter(out, on_budget=stop_at_budget)
        engine = services.engine(printer, wait_for_sign_in=False, offline_wait=0.0)
        job = await engine.run(dry_run=dry_run)
        if dry_run:
            _print_dry_run(services, job.job_id, out)
        if budget_stop and job.status is not JobStatus.COMPLETED:
            out.write(
                f"Stopped at the data budget: {budget_stop[0].message} What was copied is kept; the "
                "next sync carries on from there once the budget allows (or raise it: `celeste-desktop "
                "config set budget_monthly_mb N` / `budget_daily_mb N`, 0 for no limit).\n"
            )
            return EXIT_BUDGET
        if job.status is JobStatus.FAILED:
            error = job.error or ""
            return EXIT_CONFIG if any(word in error for word in ("sign", "Sign", "Setting", "setting")) else EXIT_FAILED
        return EXIT_OK if job.status is JobStatus.COMPLETED else EXIT_FAILED


def _print_dry_run(services: Services, job_id: str, out: TextIO) -> None:
    moving = total = 0
    for row in services.state.iter_manifest(job_id):  # streamed: 100,000 rows are never held at once
        if row.reason.startswith("would upload"):
            moving += 1
            total += row.size
        out.write(f"{row.reason.split(':', 1)[0]:<16} {row.path} ({_human(row.size)})\n")
    rate = _measured_rate(services)
    estimate = (
        f"about {total / rate / 60:.0f} min at the measured {_human(rate)}/s" if rate else "no link speed measured yet"
    )
    out.write(f"Would copy {moving} files, {_human(total)}: {estimate}.\n")
    from celeste_desktop.engine.budget import describe_share

    budget = services.usage.status()
    share = describe_share(budget, total)  # both directions count: each file goes down, then up
    if share:
        out.write(f"{share} {budget.message()}\n")


def _measured_rate(services: Services) -> float:
    """Bytes/s of the last real jobs (what the link actually gave), or 0 when unknown."""
    total_bytes = 0.0
    total_seconds = 0.0
    for job in services.state.jobs(limit=10):
        if job.dry_run or job.finished_at is None or not job.counters.bytes_uploaded:
            continue
        total_bytes += job.counters.bytes_uploaded
        total_seconds += max(1.0, (job.finished_at - job.started_at).total_seconds())
    return total_bytes / total_seconds if total_seconds else 0.0


def folders(context: CliContext, path: str | None, out: TextIO) -> int:
    return asyncio.run(_folders(context, path or "/", out))


async def _folders(context: CliContext, path: str, out: TextIO) -> int:
    async with services_for(context) as services:
        await ensure_account(services)
        drive = await default_drive(services)
        parent = await services.graph.get_by_path(drive.drive_id, path)
        selection = {e.item_id: e for e in services.state.selection(drive.drive_id)}
        found = 0
        async for page in services.graph.iter_children(drive.drive_id, parent.item_id):
            for item in sorted(page, key=lambda i: i.name.lower()):
                if not item.is_folder:
                    continue
                found += 1
                mark = "[x]" if item.item_id in selection and selection[item.item_id].included else "[ ]"
                note = " (OneNote: not copied)" if item.package_type else ""
                count = item.child_count if item.child_count is not None else "?"
                out.write(f"{mark} {item.name:<40} {count:>6} items {_human(item.size):>10}{note}\n")
        if not found:
            out.write(f"No folders under {path}.\n")
        return EXIT_OK


def select(context: CliContext, paths: Sequence[str], out: TextIO, *, include: bool, urgent: bool = False) -> int:
    return asyncio.run(_select(context, paths, out, include=include, urgent=urgent))


async def _select(context: CliContext, paths: Sequence[str], out: TextIO, *, include: bool, urgent: bool) -> int:
    async with services_for(context) as services:
        await ensure_account(services)
        drive = await default_drive(services)
        entries = {e.item_id: e for e in services.state.selection(drive.drive_id)}
        for path in paths:
            try:
                item = await services.graph.get_by_path(drive.drive_id, path)
            except NotFound:
                raise CelesteError(f"No folder {path} in {drive.name}; `celeste-desktop folders` lists them.",
                                   title="Folder not found") from None  # fmt: skip
            if not item.is_folder:
                raise CelesteError(f"{path} is a file; select folders.", title="Not a folder")
            shown = "/" + path.strip("/")
            if include:
                entries[item.item_id] = SelectionEntry(drive.drive_id, item.item_id, True, urgent, shown)
                out.write(f"selected {shown}" + (" (urgent)" if urgent else "") + "\n")
            elif item.item_id in entries and entries[item.item_id].included:
                del entries[item.item_id]
                out.write(f"unselected {shown}\n")
            else:
                # Under a ticked folder: keep it out explicitly, as the tree's untick does.
                entries[item.item_id] = SelectionEntry(drive.drive_id, item.item_id, False, False, shown)
                out.write(f"excluded {shown}\n")
        services.state.set_selection(drive.drive_id, list(entries.values()))
        return EXIT_OK


def status_json(context: CliContext, report: dict[str, Any]) -> dict[str, Any]:
    """Adds the last job, the selection and the data budget to the sign-in report."""
    from celeste_desktop.store.db import open_state

    state = open_state(context.paths.state_db)
    try:
        job = state.last_job()
        stored = state.account()
        # Who the last sync ran as (from the local state; no token): useful when the vault is gone.
        report["synced_as"] = {"username": stored.upn, "tenant_id": stored.tenant_id} if stored else None
        report["selection"] = [
            {"path": e.path, "drive_id": e.drive_id, "item_id": e.item_id, "included": e.included, "urgent": e.urgent}
            for e in state.selection()
        ]
        report["last_job"] = None
        if job is not None:
            counters = job.counters
            report["last_job"] = {
                "job_id": job.job_id, "status": job.status.value, "dry_run": job.dry_run,
                "files_found": counters.files_found, "files_succeeded": counters.files_succeeded,
                "files_failed": counters.files_failed, "files_skipped": counters.files_skipped,
                "bytes_downloaded": counters.bytes_downloaded, "bytes_uploaded": counters.bytes_uploaded,
                "started_at": job.started_at.isoformat(),
                "finished_at": job.finished_at.isoformat() if job.finished_at else None, "error": job.error,
            }  # fmt: skip
            report.update({k: v for k, v in report["last_job"].items() if k not in ("job_id", "dry_run", "error")})
        from celeste_desktop.compose import UsageTracker
        from celeste_desktop.net.clock import SystemClock

        budget = UsageTracker(state, context.settings, SystemClock()).status()
        report["budget"] = {"monthly_bytes": budget.monthly_limit or None, "daily_bytes": budget.daily_limit or None,
                            "reset": budget.period.reset.isoformat(), "level": budget.level.value}  # fmt: skip
        report["used"] = {"period_bytes": budget.monthly_used, "today_bytes": budget.daily_used,
                          "period_start": budget.period.start.isoformat()}  # fmt: skip
        report["problems"] = len(state.problems())
    finally:
        state.close()
    return report


def diagnostics(context: CliContext, target: Path, out: TextIO) -> int:
    from celeste_desktop.support.diagnostics import DiagnosticsInput, write_diagnostics

    def summary() -> dict[str, Any]:
        report: dict[str, Any] = {"account": None}
        return status_json(context, report)

    def names() -> list[str]:
        vault = context.secrets_or_none()
        return vault.names() if vault is not None else []

    written = write_diagnostics(target, DiagnosticsInput(context.paths, context.redactor, summary, names))
    out.write(f"Wrote {target} ({len(written)} parts; secrets redacted). Send it to your CelesteOS support contact.\n")
    return EXIT_OK


def stdout() -> TextIO:
    return sys.stdout
