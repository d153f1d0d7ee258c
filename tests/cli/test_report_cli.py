"""``celeste-desktop report``: a PDF or CSV of a sync from the local state, headless."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from celeste_desktop.cli.context import CliContext
from celeste_desktop.cli.report_cmd import report
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, save_settings
from celeste_desktop.domain.errors import CelesteError, ConfigError
from celeste_desktop.domain.models import Drive, DriveKind, JobStatus
from celeste_desktop.store.db import open_state
from celeste_desktop.store.records import ManifestOutcome, ManifestRow
from celeste_desktop.support.manifest import JobNotFound

YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"
AT = datetime(2026, 1, 31, 8, 15, tzinfo=UTC)


@pytest.fixture
def context(home: Path) -> CliContext:
    """A home whose state holds one finished sync (two delivered, one skipped) and a dry run."""
    paths = AppPaths.resolve(home)
    paths.ensure()
    save_settings(paths.settings_file, Settings(yacht_id=YACHT, vault_backend="file"))
    with open_state(paths.state_db) as state:
        state.set_account("officer@yacht.example", "tenant-1")
        state.save_drive(Drive("drive-1", "OneDrive", DriveKind.ONEDRIVE))
        state.start_job("job-real-0001")
        state.add_manifest_rows(
            "job-real-0001",
            [
                ManifestRow("drive-1", "i1", "01_BRIDGE/Navigation.pdf", ManifestOutcome.DELIVERED, AT, size=1200,
                            sha256="ab" * 32, quickxor="2R1ihCdD0qpC2UBQ+0eU/UZHXsA=",
                            storage_key=f"{YACHT}/01_BRIDGE/Navigation.pdf", registration_id="reg-1", reason="new"),
                ManifestRow("drive-1", "i2", "01_BRIDGE/Ölfilter.pdf", ManifestOutcome.DELIVERED, AT, size=34,
                            sha256="cd" * 32, storage_key=f"{YACHT}/01_BRIDGE/Ölfilter.pdf",
                            registration_id="reg-2", reason="new"),
                ManifestRow("drive-1", "i3", "01_BRIDGE/Bridge Notebook", ManifestOutcome.SKIPPED, AT,
                            reason="OneNote notebooks have no downloadable file"),
            ],
        )  # fmt: skip
        state.finish_job("job-real-0001", JobStatus.COMPLETED)
        state.start_job("job-preview-0002", dry_run=True)
        state.finish_job("job-preview-0002", JobStatus.COMPLETED)
    return CliContext(paths=paths)


def test_csv_report_of_the_latest_real_sync(context: CliContext, tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "evidence" / "report.CSV"
    assert report(context, None, target, out) == 0
    with target.open(encoding="utf-8-sig", newline="") as stream:
        records = list(csv.DictReader(stream))
    assert [r["path"] for r in records if r["record"] == "file"] == [
        "01_BRIDGE/Bridge Notebook",
        "01_BRIDGE/Navigation.pdf",
        "01_BRIDGE/Ölfilter.pdf",
    ]
    assert {r["job_id"] for r in records} == {"job-real-0001"}, "the dry run is not delivery evidence"
    assert {r["yacht_id"] for r in records} == {YACHT}
    assert {r["account"] for r in records} == {"officer@yacht.example"}
    message = out.getvalue()
    assert message.startswith(f"Wrote {target} (3 files): sync job-real-0001 started ")
    assert "completed; 2 delivered, 0 relocated, 0 removed, 1 skipped, 0 failed." in message


def test_pdf_report_of_a_named_job(context: CliContext, tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "report.pdf"
    assert report(context, "job-real", target, out) == 0
    assert target.read_bytes().startswith(b"%PDF")
    assert "(1 page): sync job-real-0001" in out.getvalue()


def test_a_dry_run_is_reported_when_named(context: CliContext, tmp_path: Path) -> None:
    out = io.StringIO()
    assert report(context, "job-preview-0002", tmp_path / "dry.csv", out) == 0
    assert "(0 files): dry run job-preview-0002" in out.getvalue()


def test_unknown_job_and_unknown_format_say_what_to_do(context: CliContext, tmp_path: Path) -> None:
    with pytest.raises(JobNotFound, match="leave out --job"):
        report(context, "nope", tmp_path / "r.csv", io.StringIO())
    with pytest.raises(ConfigError, match=r"\.pdf \(to print\) or ….csv \(for Excel\)"):
        report(context, None, tmp_path / "r.xlsx", io.StringIO())
    assert not list(tmp_path.glob("r.*")), "nothing written when the command fails"


@pytest.mark.parametrize("name", ["taken.pdf", "taken.csv"])
def test_a_file_that_cannot_be_written_is_a_message_not_a_traceback(
    context: CliContext, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "out"
    (folder / name).mkdir(parents=True)  # a folder where the report should go
    with pytest.raises(CelesteError, match="Choose a file in a folder you can write to") as caught:
        report(context, None, folder / name, io.StringIO())
    assert caught.value.title == "Report not written"
    assert [p.name for p in folder.iterdir()] == [name], "no temporary file left behind"


def test_no_sync_yet(home: Path, tmp_path: Path) -> None:
    paths = AppPaths.resolve(home)
    paths.ensure()
    with pytest.raises(JobNotFound, match="run a sync first"):
        report(CliContext(paths=paths), None, tmp_path / "r.pdf", io.StringIO())


def test_pdf_from_a_headless_process_without_any_qt_platform_set(context: CliContext, tmp_path: Path) -> None:
    """As Task Scheduler or cron runs it: no Qt application, no QT_QPA_PLATFORM, no display."""
    target = tmp_path / "headless.pdf"
    script = (
        "import io, sys\n"
        "from pathlib import Path\n"
        "from celeste_desktop.cli.context import CliContext\n"
        "from celeste_desktop.cli.report_cmd import report\n"
        "from celeste_desktop.config.paths import AppPaths\n"
        "out = io.StringIO()\n"
        "code = report(CliContext(paths=AppPaths.resolve(sys.argv[1])), None, Path(sys.argv[2]), out)\n"
        "print(code, out.getvalue())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(context.paths.home), str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 Wrote"), done.stdout + done.stderr
    assert target.read_bytes().startswith(b"%PDF")
