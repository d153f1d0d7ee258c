"""The printable delivery report: A4 pages that show the evidence, rendered to PNG to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from celeste_desktop.domain.models import JobStatus
from celeste_desktop.gui.report_pdf import ensure_application, render_pdf
from celeste_desktop.store.records import ManifestOutcome
from celeste_desktop.support.manifest import DeliveryReport, ReportHeader, ReportRow, ReportTotals

YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"
JOB = "717f3852-151b-4293-b18e-c2681baea2ab"
T0 = datetime(2026, 1, 31, 8, 15, tzinfo=UTC)
LONG_FOLDER = "04_MANUALS/Main Engines/MTU 16V4000 M63L/Service Documentation/Maintenance Schedules"
LONG_NAME = "MTU_16V4000_M63L_Operating_Instructions_and_Maintenance_Schedule_Revision_2024-03_FINAL_signed.pdf"

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="pdftoppm/pdftotext (poppler-utils) are not installed: install them to render the PDF in this test",
)


def row(index: int, path: str, outcome: ManifestOutcome = ManifestOutcome.DELIVERED, **values: object) -> ReportRow:
    delivered = outcome in (ManifestOutcome.DELIVERED, ManifestOutcome.RELOCATED)
    fields: dict[str, object] = {
        "outcome": outcome,
        "drive_name": "OneDrive",
        "path": path,
        "size": 10_000 + index,
        "at": T0 + timedelta(seconds=index),
        "sha256": f"{index:064x}" if delivered else None,
        "quickxor": "2R1ihCdD0qpC2UBQ+0eU/UZHXsA=" if delivered else None,
        "storage_key": f"{YACHT}/{path}" if delivered or outcome is ManifestOutcome.DELETED else None,
        "registration_id": f"505fdb73-bf3e-532c-94e8-{index:012d}" if delivered else None,
        "reason": "new" if delivered else "",
        "drive_id": "drive-1",
        "item_id": f"item-{index}",
    }
    fields.update(values)
    return ReportRow(**fields)  # type: ignore[arg-type]


def report_of(rows: list[ReportRow], **header: object) -> DeliveryReport:
    counts = {outcome: sum(1 for r in rows if r.outcome is outcome) for outcome in ManifestOutcome}
    totals = ReportTotals(
        delivered=counts[ManifestOutcome.DELIVERED],
        relocated=counts[ManifestOutcome.RELOCATED],
        removed=counts[ManifestOutcome.DELETED],
        skipped=counts[ManifestOutcome.SKIPPED],
        failed=counts[ManifestOutcome.FAILED],
        bytes_delivered=sum(r.size for r in rows if r.outcome is ManifestOutcome.DELIVERED),
    )
    fields: dict[str, object] = {
        "yacht_id": YACHT,
        "account": "it.officer@mysimyacht.onmicrosoft.com",
        "job_id": JOB,
        "status": JobStatus.PARTIAL,
        "dry_run": False,
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=7, seconds=12),
        "generated_at": T0 + timedelta(hours=2),
        "drives": ("OneDrive",),
    }
    fields.update(header)
    return DeliveryReport(ReportHeader(**fields), tuple(rows), totals)  # type: ignore[arg-type]


def sample() -> DeliveryReport:
    return report_of(
        [
            row(1, "01_BRIDGE/Navigation/Navigation Procedures.pdf"),
            row(2, f"{LONG_FOLDER}/{LONG_NAME}"),
            row(3, "03_ENGINEERING/Ölfilter Wartung.docx"),
            row(4, "04_MANUALS/Galley/Miele Range Parts.pdf", ManifestOutcome.RELOCATED, reason="renamed"),
            row(5, "01_BRIDGE/Passage Plans/Old Checklist.docx", ManifestOutcome.DELETED, reason="deleted upstream"),
            row(6, "01_BRIDGE/Bridge Notebook", ManifestOutcome.SKIPPED, size=0,
                reason="OneNote notebooks have no downloadable file; export them to PDF in OneNote to include them."),
            row(7, "04_MANUALS/Navigation/ECDIS Chart Updater.zip", ManifestOutcome.FAILED,
                reason="Service unreachable after 5 tries; the next sync retries it."),
        ]
    )  # fmt: skip


def pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def page_count(pdf: Path) -> int:
    done = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    found = re.search(r"^Pages:\s+(\d+)", done.stdout, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


@pytest.fixture
def app() -> QApplication:
    application = ensure_application()
    assert isinstance(application, QApplication)
    return application


@needs_poppler
def test_page_renders_to_a_non_blank_a4_png(app: QApplication, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    assert render_pdf(sample(), pdf) >= 1
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)  # fmt: skip
    image = QImage(str(next(tmp_path.glob("page*.png"))))
    assert not image.isNull()
    assert abs(image.height() / image.width() - 297 / 210) < 0.01, "A4 portrait"
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    dark = sum(
        1 for y in range(0, grey.height(), 2) for x in range(0, grey.width(), 2) if grey.pixelColor(x, y).value() < 128
    )
    sampled = (grey.height() // 2) * (grey.width() // 2)
    assert 0.01 < dark / sampled < 0.5, "text on the page, but not a black page"


@needs_poppler
def test_title_block_rows_and_evidence_are_in_the_text(app: QApplication, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pages = render_pdf(sample(), pdf)
    text = pdf_text(pdf)
    flat = re.sub(r"\s+", "", text)
    for expected in (
        "Delivery report",
        YACHT,
        "it.officer@mysimyacht.onmicrosoft.com",
        JOB,
        "Completed with failures",
        "2026-01-31 08:15:00 – 2026-01-31 08:22:12 UTC (7 min 12 s)",
        f"Page 1 of {pages}",
        "Ölfilter Wartung.docx",
        "Skipped: OneNote notebooks have no downloadable file",
        "FAILED: Service unreachable",
        "2R1ihCdD0qpC2UBQ+0eU/UZHXsA=",
        "505fdb73-bf3e-532c-94e8-000000000002",
        "relocated: renamed",
        "Removed (1)",
        "deleted upstream",
        "Delivered (3) and relocated (1)",
    ):
        assert re.sub(r"\s+", "", expected) in flat, expected  # cells wrap: compare without spaces
    assert f"{3:064x}" in text, "a SHA-256 is printed whole, on one line"
    # Long paths wrap instead of running off the page: every character is there, across lines.
    assert re.sub(r"\s+", "", f"/{LONG_FOLDER}/{LONG_NAME}") in flat
    assert re.sub(r"\s+", "", f"{YACHT}/{LONG_FOLDER}/{LONG_NAME}") in flat
    long_lines = [line for line in text.splitlines() if "MTU_16V4000" in line]
    assert long_lines and all(len(line) < 160 for line in long_lines)
    assert "10,002 B" in text, "sizes in exact bytes"


@needs_poppler
def test_many_files_flow_over_numbered_pages_quickly(app: QApplication, tmp_path: Path) -> None:
    rows = [row(i, f"04_MANUALS/Library {i // 50:02d}/Document {i:04d}.pdf") for i in range(600)]
    pdf = tmp_path / "big.pdf"
    started = time.monotonic()
    pages = render_pdf(report_of(rows, status=JobStatus.COMPLETED), pdf)
    assert time.monotonic() - started < 10
    assert pages == page_count(pdf) > 20
    text = pdf_text(pdf)
    assert f"Page {pages} of {pages}" in text
    assert "Delivered (600) (continued)" in text, "the section and its column heads repeat on each page"
    assert "Document 0599.pdf" in text
    assert "Not delivered: none" in text
    for page in text.split("\f")[1:-1]:
        assert "OneDrive path and evidence" in page


@needs_poppler
def test_dry_runs_and_running_jobs_say_so_before_anything_else(app: QApplication, tmp_path: Path) -> None:
    dry = report_of([row(1, "a.pdf", sha256=None, reason="would upload: new")], dry_run=True,
                    status=JobStatus.COMPLETED)  # fmt: skip
    pdf = tmp_path / "dry.pdf"
    render_pdf(dry, pdf)
    assert "DRY RUN: nothing was sent" in pdf_text(pdf)
    running = replace(dry, header=replace(dry.header, dry_run=False, status=JobStatus.RUNNING, finished_at=None))
    render_pdf(running, pdf)
    text = pdf_text(pdf)
    assert "This sync is still running" in text
    assert "still running UTC" not in text
    assert "Delivered: none" not in text


@needs_poppler
def test_files_from_several_libraries_are_prefixed_with_their_library(app: QApplication, tmp_path: Path) -> None:
    rows = [row(1, "a.pdf"), row(2, "Engines/b.pdf", drive_name="Engineering")]
    pdf = tmp_path / "two.pdf"
    render_pdf(report_of(rows, drives=("Engineering", "OneDrive")), pdf)
    text = pdf_text(pdf)
    assert "Engineering: /Engines/b.pdf" in text
    assert "OneDrive: /a.pdf" in text
    assert "Engineering, OneDrive" in text


def test_rendering_replaces_the_file_only_when_complete(app: QApplication, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"previous")
    render_pdf(sample(), pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"], "no temporary file left behind"
