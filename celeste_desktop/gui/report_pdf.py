"""The delivery report as a printable PDF (A4, page numbers, wrapped paths), drawn with Qt alone.

The page is laid out by hand with ``QTextLayout`` and painted with ``QPainter`` on a
``QPdfWriter`` rather than through ``QTextDocument`` HTML: each file's evidence must stay on one
page, page numbers need the page count first, and the layout stays linear for thousands of
files. Layout runs once to split the content into pages, then every page is painted.

The PDF is for paper and archives, so it ignores the screen's light or dark palette: dark ink
on white, greys that survive a laser printer, and colour only for "failed". Fonts are the
system's general and fixed-width fonts (embedded by Qt).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QMarginsF, QPointF, QRectF
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QFontMetricsF,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import QApplication

from celeste_desktop.domain.models import JobStatus
from celeste_desktop.store.records import ManifestOutcome
from celeste_desktop.support.manifest import DeliveryReport, ReportRow, write_atomically

__all__ = ["ensure_application", "render_pdf"]

DPI = 300
MARGIN_MM = (18.0, 16.0, 18.0, 14.0)  # left, top, right, bottom
INK = QColor(20, 20, 20)
MUTED = QColor(90, 90, 90)
RULE = QColor(170, 170, 170)
BAND = QColor(242, 242, 242)  # every other file, so a row is easy to follow across the page
ALERT = QColor(170, 20, 20)  # failed files: the one colour, still dark enough in greyscale

_STATUS_TEXT = {
    JobStatus.COMPLETED: "Completed",
    JobStatus.PARTIAL: "Completed with failures",
    JobStatus.FAILED: "Failed (the sync could not run)",
    JobStatus.CANCELLED: "Cancelled",
    JobStatus.RUNNING: "Still running: this report is not final",
    JobStatus.PENDING: "Not started",
}

_owned_app: QCoreApplication | None = None  # kept alive for the process when we made it


def ensure_application() -> QCoreApplication:
    """The running Qt application, or a new windowless one for a headless ``report`` command.

    A ``QApplication`` (not just a ``QGuiApplication``) because Qt allows one application per
    process: later widget code in the same process (a test run, the window) needs the full one.
    Linux and other X11/Wayland systems get the offscreen platform (no display needed, fonts
    from fontconfig). Windows keeps its native platform: it opens no window either, and
    Windows' offscreen plugin only finds fonts bundled with Qt, which the wheels do not ship.
    """
    global _owned_app  # noqa: PLW0603 - Qt's application is a process-wide singleton by design
    existing = QCoreApplication.instance()
    if existing is not None:
        return existing
    argv = ["celeste-desktop"]
    if not os.environ.get("QT_QPA_PLATFORM") and sys.platform not in ("win32", "darwin"):
        argv += ["-platform", "offscreen"]
    _owned_app = QApplication(argv)
    return _owned_app


def render_pdf(report: DeliveryReport, target: Path) -> int:
    """Write the report to ``target`` as a PDF; returns the number of pages.

    Needs a Qt GUI application (``ensure_application``). The file is replaced only once
    complete, so a failure never leaves a truncated report.
    """
    with write_atomically(target) as temporary:
        writer = QPdfWriter(str(temporary))
        writer.setResolution(DPI)
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Portrait,
                QMarginsF(*MARGIN_MM),
                QPageLayout.Unit.Millimeter,
            )
        )
        writer.setPdfVersion(QPagedPaintDevice.PdfVersion.PdfVersion_A1b)  # archival PDF/A-1b
        writer.setTitle(f"Delivery report: yacht {report.header.yacht_id}, job {report.header.job_id}")
        writer.setCreator(f"CelesteOS Desktop {report.header.app_version}")
        area = writer.pageLayout().paintRectPixels(DPI)
        fonts = _Fonts(writer)
        pages = _Composer(report, fonts, float(area.width()), float(area.height())).compose()
        painter = QPainter()
        if not painter.begin(writer):
            raise OSError(errno.EACCES, "Qt could not open the PDF file for writing", str(target))
        try:
            for number, page in enumerate(pages):
                if number:
                    writer.newPage()
                for op in page:
                    op.paint(painter)
        finally:
            painter.end()
        return len(pages)


# -- fonts and text measurement -----------------------------------------------------------------


class _Fonts:
    def __init__(self, device: QPdfWriter) -> None:
        self.device = device
        general = QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont).family()
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self.title = self._font(general, 18, bold=True)
        self.heading = self._font(general, 11.5, bold=True)
        self.body = self._font(general, 8.5)
        self.strong = self._font(general, 8.5, bold=True)
        self.small = self._font(general, 7.5)
        self.figure = self._font(general, 15, bold=True)
        self.mono = self._font(fixed, 7.5, fixed=True)

    @staticmethod
    def _font(family: str, points: float, *, bold: bool = False, fixed: bool = False) -> QFont:
        font = QFont(family)
        font.setStyleHint(QFont.StyleHint.TypeWriter if fixed else QFont.StyleHint.SansSerif)
        font.setPointSizeF(points)
        font.setBold(bold)
        # No ligatures: "fi" drawn as one glyph copies out as U+FB01, and a search of the PDF
        # for "it.officer@…" or a file name must find it.
        for feature in ("liga", "clig"):
            font.setFeature(QFont.Tag(feature), 0)
        return font

    def metrics(self, font: QFont) -> QFontMetricsF:
        return QFontMetricsF(font, self.device)

    def wrap(self, text: str, font: QFont, width: float) -> list[str]:
        """Lines of ``text`` within ``width``: at spaces when it can, anywhere when it must
        (a storage key or a hash has no spaces)."""
        layout = QTextLayout(text, font, self.device)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        lines: list[str] = []
        layout.beginLayout()
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            lines.append(text[line.textStart() : line.textStart() + line.textLength()].rstrip())
        layout.endLayout()
        return lines or [""]


# -- drawing operations -------------------------------------------------------------------------


@dataclass
class _Text:
    x: float
    y: float
    width: float
    lines: list[str]
    font: QFont
    line_height: float
    ascent: float
    color: QColor = field(default_factory=lambda: INK)
    right: bool = False

    @property
    def height(self) -> float:
        return self.line_height * len(self.lines)

    def paint(self, painter: QPainter) -> None:
        painter.setFont(self.font)
        painter.setPen(self.color)
        metrics = QFontMetricsF(self.font, painter.device())
        for index, line in enumerate(self.lines):
            x = self.x + (self.width - metrics.horizontalAdvance(line) if self.right else 0.0)
            painter.drawText(QPointF(x, self.y + self.ascent + index * self.line_height), line)

    def moved(self, dy: float) -> _Text:
        return replace(self, y=self.y + dy)


@dataclass
class _Box:
    rect: QRectF
    fill: QColor | None = None
    stroke: QColor | None = None

    def paint(self, painter: QPainter) -> None:
        painter.setPen(QPen(self.stroke, 2.0) if self.stroke is not None else QPen(QColor(0, 0, 0, 0)))
        if self.fill is not None:
            painter.fillRect(self.rect, self.fill)
        if self.stroke is not None:
            painter.drawRect(self.rect)

    def moved(self, dy: float) -> _Box:
        return replace(self, rect=self.rect.translated(0, dy))


_Op = _Text | _Box


@dataclass
class _Block:
    """Something placed as a whole on one page: ops positioned from y = 0, and its height."""

    ops: list[_Op]
    height: float


# -- composition --------------------------------------------------------------------------------


def _mm(value: float) -> float:
    return value / 25.4 * DPI


def _bytes(size: int) -> str:
    return f"{size:,} B"


def _human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class _Composer:
    """Splits the report into pages of drawing operations."""

    def __init__(self, report: DeliveryReport, fonts: _Fonts, width: float, height: float) -> None:
        self.report = report
        self.fonts = fonts
        self.width = width
        self.footer_height = fonts.metrics(fonts.small).lineSpacing() * 2
        self.bottom = height - self.footer_height
        self.pages: list[list[_Op]] = []
        self.y = 0.0
        self.repeat: _Block | None = None  # the current section's heads, again on each new page

    # -- primitives ----------------------------------------------------------------------------

    def text(
        self, x: float, y: float, width: float, text: str, font: QFont, *, color: QColor = INK, right: bool = False
    ) -> _Text:
        metrics = self.fonts.metrics(font)
        lines = self.fonts.wrap(text, font, width)
        return _Text(x, y, width, lines, font, metrics.lineSpacing(), metrics.ascent(), color, right)

    def place(self, block: _Block, *, keep_with_next: float = 0.0) -> None:
        """Put ``block`` at the cursor, on a new page if it (and ``keep_with_next``) do not fit."""
        if not self.pages or self.y + block.height + keep_with_next > self.bottom:
            self.new_page()
        self.pages[-1].extend(op.moved(self.y) for op in block.ops)
        self.y += block.height

    def space(self, amount: float) -> None:
        self.y = min(self.y + amount, self.bottom)

    def new_page(self) -> None:
        self.pages.append([])
        self.y = 0.0
        if len(self.pages) > 1:
            self.place(self.running_head())
            if self.repeat is not None:
                self.place(self.repeat)

    # -- the parts -----------------------------------------------------------------------------

    def compose(self) -> list[list[_Op]]:
        self.title_block()
        self.exceptions()
        self.delivered()
        self.removed()
        self.notes()
        self.footers()
        return self.pages

    def running_head(self) -> _Block:
        header = self.report.header
        text = self.text(0, 0, self.width, f"Delivery report · yacht {header.yacht_id} · job {header.job_id}",
                         self.fonts.small, color=MUTED)  # fmt: skip
        rule_y = text.height + _mm(1)
        return _Block([text, _Box(QRectF(0, rule_y, self.width, 2), fill=RULE)], rule_y + _mm(3))

    def title_block(self) -> None:
        header = self.report.header
        fonts = self.fonts
        title = self.text(0, 0, self.width, "Delivery report", fonts.title)
        subtitle = self.text(0, title.height, self.width, "Documents copied from Microsoft 365 to the CelesteOS "
                             "fleet storage, with the evidence that each arrived intact.", fonts.body,
                             color=MUTED)  # fmt: skip
        self.place(_Block([title, subtitle], title.height + subtitle.height + _mm(4)))
        if header.dry_run:
            self.banner("DRY RUN: nothing was sent. The rows show what the sync would have done.")
        if header.status is JobStatus.RUNNING:
            self.banner("This sync is still running: run the report again when it has finished.")
        finished = header.finished_at
        if finished is None:
            period = f"{_when(header.started_at)} UTC – still running"
        else:
            duration = _duration((finished - header.started_at).total_seconds())
            period = f"{_when(header.started_at)} – {_when(finished)} UTC ({duration})"
        facts = [
            ("Yacht", header.yacht_id or "not set"),
            ("Account", header.account or "not signed in"),
            ("Source", ", ".join(header.drives) or "—"),
            ("Sync job", header.job_id),
            ("Result", _STATUS_TEXT.get(header.status, header.status.value)),
            ("Period", period),
            ("Generated", f"{_when(header.generated_at)} UTC by CelesteOS Desktop {header.app_version}"),
        ]
        label_width = _mm(24)
        for label, value in facts:
            name = self.text(0, 0, label_width, label, fonts.strong, color=MUTED)
            shown = self.text(label_width, 0, self.width - label_width, value, fonts.body)
            self.place(_Block([name, shown], max(name.height, shown.height) + _mm(0.6)))
        self.space(_mm(3))
        self.place(self.totals_strip())
        self.space(_mm(6))

    def banner(self, message: str) -> None:
        pad = _mm(2)
        text = self.text(pad, pad, self.width - 2 * pad, message, self.fonts.strong)
        height = text.height + 2 * pad
        self.place(_Block([_Box(QRectF(0, 0, self.width, height), fill=BAND, stroke=INK), text],
                          height + _mm(3)))  # fmt: skip

    def totals_strip(self) -> _Block:
        totals = self.report.totals
        cells = [
            ("Delivered", str(totals.delivered), _human(totals.bytes_delivered)),
            ("Relocated", str(totals.relocated), "moved or renamed"),
            ("Removed", str(totals.removed), "registration withdrawn"),
            ("Skipped", str(totals.skipped), "by rule, with reason"),
            ("Failed", str(totals.failed), "to be retried"),
        ]
        gap = _mm(2.5)
        cell_width = (self.width - gap * (len(cells) - 1)) / len(cells)
        pad = _mm(2)
        ops: list[_Op] = []
        contents: list[list[_Text]] = []
        for index, (label, figure, note) in enumerate(cells):
            x = index * (cell_width + gap) + pad
            inner = cell_width - 2 * pad
            alert = label == "Failed" and totals.failed > 0
            ink = ALERT if alert else INK
            first = self.text(x, pad, inner, label, self.fonts.small, color=MUTED)
            number = self.text(x, first.y + first.height, inner, figure, self.fonts.figure, color=ink)
            last = self.text(x, number.y + number.height, inner, note, self.fonts.small, color=MUTED)
            contents.append([first, number, last])
        height = max(cell[-1].y + cell[-1].height for cell in contents) + pad
        for index, cell in enumerate(contents):
            ops.append(_Box(QRectF(index * (cell_width + gap), 0, cell_width, height), stroke=RULE))
            ops.extend(cell)
        return _Block(ops, height)

    def heading(self, title: str, explanation: str) -> _Block:
        head = self.text(0, 0, self.width, title, self.fonts.heading)
        if not explanation:
            return _Block([head], head.height + _mm(1.5))
        note = self.text(0, head.height, self.width, explanation, self.fonts.small, color=MUTED)
        return _Block([head, note], head.height + note.height + _mm(2))

    def column_heads(self, columns: Sequence[tuple[str, float, bool]]) -> _Block:
        ops: list[_Op] = []
        x = 0.0
        height = 0.0
        for label, width, right in columns:
            text = self.text(x, 0, width - _mm(2), label, self.fonts.strong, color=MUTED, right=right)
            ops.append(text)
            height = max(height, text.height)
            x += width
        ops.append(_Box(QRectF(0, height + _mm(0.8), self.width, 3), fill=INK))
        return _Block(ops, height + _mm(2))

    def section(self, title: str, explanation: str, columns: Sequence[tuple[str, float, bool]]) -> None:
        """A heading with column heads, kept with the first rows; repeated (continued) on new pages."""
        heads = self.column_heads(columns)
        head = self.heading(title, explanation)
        self.place(_Block(head.ops + [op.moved(head.height) for op in heads.ops], head.height + heads.height),
                   keep_with_next=_mm(14))  # fmt: skip
        again = self.heading(f"{title} (continued)", "")
        self.repeat = _Block(again.ops + [op.moved(again.height) for op in heads.ops], again.height + heads.height)

    def exceptions(self) -> None:
        rows = [*self.report.failed, *self.report.skipped]
        if not rows:
            self.place(self.heading("Not delivered: none", "Every file found in the selected folders was delivered."))
            self.space(_mm(5))
            return
        number_w, size_w = _mm(8), _mm(20)
        path_w = (self.width - number_w - size_w) * 0.55
        reason_w = self.width - number_w - size_w - path_w
        self.section(
            f"Not delivered ({len(rows)})",
            "Failed files are retried by the next sync; skipped files are left out by rule, as the reason says.",
            [("#", number_w, False), ("OneDrive path", path_w, False), ("Size", size_w, True),
             ("Why", reason_w, False)],
        )  # fmt: skip
        for index, row in enumerate(rows, start=1):
            failed = row.outcome is ManifestOutcome.FAILED
            ink = ALERT if failed else INK
            cells = [
                self.text(0, 0, number_w - _mm(2), str(index), self.fonts.body, color=MUTED),
                self.text(number_w, 0, path_w - _mm(3), self.path_of(row), self.fonts.body),
                self.text(number_w + path_w, 0, size_w - _mm(2), _bytes(row.size), self.fonts.body, right=True),
                self.text(number_w + path_w + size_w, 0, reason_w,
                          ("FAILED: " if failed else "Skipped: ") + row.reason, self.fonts.body, color=ink),
            ]  # fmt: skip
            self.place(self.row_block(cells, index))
        self.repeat = None
        self.space(_mm(6))

    def delivered(self) -> None:
        rows = self.report.delivered
        if not rows:
            self.place(self.heading("Delivered: none", "No file was copied or registered by this sync."))
            self.space(_mm(5))
            return
        number_w, size_w, when_w = _mm(8), _mm(22), _mm(34)
        path_w = self.width - number_w - size_w - when_w
        totals = self.report.totals
        title = f"Delivered ({totals.delivered})"
        if totals.relocated:
            title += f" and relocated ({totals.relocated})"
        self.section(
            title,
            "Each file's SHA-256 is of the bytes stored; QuickXorHash is OneDrive's own hash of the source; "
            "the registration id is the document id in the CelesteOS pipeline.",
            [("#", number_w, False), ("OneDrive path and evidence", path_w, False), ("Size", size_w, True),
             ("Delivered (UTC)", when_w, True)],
        )  # fmt: skip
        label_w = _mm(24)
        for index, row in enumerate(rows, start=1):
            path = self.text(number_w, 0, path_w - _mm(3), self.path_of(row), self.fonts.strong)
            cells: list[_Text] = [
                self.text(0, 0, number_w - _mm(2), str(index), self.fonts.body, color=MUTED),
                path,
                self.text(number_w + path_w, 0, size_w - _mm(1), _bytes(row.size), self.fonts.body, right=True),
                self.text(number_w + path_w + size_w, 0, when_w, _when(row.at), self.fonts.body, right=True),
            ]
            y = path.height + _mm(0.4)
            evidence = [
                ("SHA-256", row.sha256),
                ("QuickXorHash", row.quickxor),
                ("Storage key", row.storage_key),
                ("Registration id", row.registration_id),
            ]
            if row.outcome is ManifestOutcome.RELOCATED or row.reason not in ("", "new"):
                evidence.append(("Action", f"{row.outcome.value}: {row.reason}" if row.reason else row.outcome.value))
            for label, value in evidence:
                name = self.text(number_w, y, label_w, label, self.fonts.small, color=MUTED)
                shown = self.text(number_w + label_w, y, self.width - number_w - label_w, value or "—",
                                  self.fonts.mono)  # fmt: skip
                name.y += max(0.0, shown.ascent - name.ascent)  # one baseline for label and value
                cells += [name, shown]
                y += max(name.height, shown.height)
            self.place(self.row_block(cells, index))
        self.repeat = None
        self.space(_mm(6))

    def removed(self) -> None:
        rows = self.report.removed
        if not rows:
            return
        number_w = _mm(8)
        path_w = (self.width - number_w) * 0.5
        key_w = self.width - number_w - path_w
        self.section(
            f"Removed ({len(rows)})",
            "Deleted in OneDrive or no longer selected: the document's registration was withdrawn.",
            [("#", number_w, False), ("OneDrive path", path_w, False), ("Storage key", key_w, False)],
        )
        for index, row in enumerate(rows, start=1):
            path = self.text(number_w, 0, path_w - _mm(3), self.path_of(row), self.fonts.body)
            cells = [
                self.text(0, 0, number_w - _mm(2), str(index), self.fonts.body, color=MUTED),
                path,
                self.text(number_w + path_w, 0, key_w, row.storage_key or "—", self.fonts.mono),
            ]
            if row.reason:
                cells.append(self.text(number_w, path.height, path_w - _mm(3), row.reason, self.fonts.small,
                                       color=MUTED))  # fmt: skip
            self.place(self.row_block(cells, index))
        self.repeat = None
        self.space(_mm(6))

    def notes(self) -> None:
        text = (
            "How to check a file: its object in the fleet storage under the storage key has the size and SHA-256 "
            "shown, and its doc_metadata row has the same sha256 and source_id equal to the registration id. "
            "The same rows, machine-readable, come from: celeste-desktop report --job "
            f"{self.report.header.job_id} OUT.csv"
        )
        self.place(_Block([self.text(0, 0, self.width, text, self.fonts.small, color=MUTED)],
                          self.fonts.metrics(self.fonts.small).lineSpacing() * 4))  # fmt: skip

    def row_block(self, cells: list[_Text], index: int) -> _Block:
        pad = _mm(1)
        height = max(cell.y + cell.height for cell in cells) + 2 * pad
        ops: list[_Op] = [_Box(QRectF(0, 0, self.width, height), fill=BAND)] if index % 2 == 0 else []
        ops += [cell.moved(pad) for cell in cells]
        return _Block(ops, height)

    def path_of(self, row: ReportRow) -> str:
        if len(self.report.header.drives) > 1:
            return f"{row.drive_name}: {row.onedrive_path}"
        return row.onedrive_path

    def footers(self) -> None:
        header = self.report.header
        total = len(self.pages)
        y = self.bottom + self.footer_height - self.fonts.metrics(self.fonts.small).lineSpacing()
        made = f"Generated {_when(header.generated_at)} UTC by CelesteOS Desktop {header.app_version}"
        for number, page in enumerate(self.pages, start=1):
            page.append(_Box(QRectF(0, y - _mm(1.2), self.width, 2), fill=RULE))
            page.append(self.text(0, y, self.width * 0.8, made, self.fonts.small, color=MUTED))
            page.append(self.text(self.width * 0.8, y, self.width * 0.2, f"Page {number} of {total}",
                                  self.fonts.small, color=MUTED, right=True))  # fmt: skip
