"""``report [--job ID] OUT.pdf|OUT.csv``: the delivery report of a sync, as evidence for audits.

The format follows the file's extension. Without ``--job`` the latest sync that was not a dry
run is reported; ``--job`` takes a full job id or an unambiguous start of one. The PDF needs
Qt's painting classes, so only that branch imports the GUI package (lazily: the CSV path and
the rest of the CLI stay Qt-free) and starts a windowless Qt application when none runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from celeste_desktop.cli.context import CliContext
from celeste_desktop.domain.errors import CelesteError, ConfigError
from celeste_desktop.store.db import open_state
from celeste_desktop.support.manifest import DeliveryReport, build_report, iso_utc, save_csv

EXIT_OK = 0
FORMATS = (".pdf", ".csv")


def report(context: CliContext, job_id: str | None, out_path: Path, out: TextIO) -> int:
    """Write the report of ``job_id`` (None: the latest real sync) to ``out_path``.

    Raises ``ConfigError`` for an extension other than .pdf or .csv, ``JobNotFound`` when the
    job is unknown or no sync has run yet, ``CelesteError`` when the file cannot be written.
    """
    suffix = out_path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            "OUT", f"cannot tell the format of {out_path.name!r}: name the file ….pdf (to print) or ….csv (for Excel)"
        )
    state = open_state(context.paths.state_db)
    try:
        delivery = build_report(state, context.settings.yacht_id, job_id)
    finally:
        state.close()
    try:
        if suffix == ".csv":
            save_csv(delivery, out_path)
            detail = f"{len(delivery.rows)} files"
        else:
            from celeste_desktop.gui.report_pdf import ensure_application, render_pdf

            ensure_application()
            pages = render_pdf(delivery, out_path)
            detail = f"{pages} page{'s' if pages != 1 else ''}"
    except OSError as error:
        raise CelesteError(
            f"The report could not be written to {out_path} ({error.strerror or error}). Choose a file in a "
            "folder you can write to, on a disk with free space, and close the file if another program has it open.",
            title="Report not written",
        ) from error
    out.write(f"Wrote {out_path} ({detail}): {_describe(delivery)}.\n")
    return EXIT_OK


def _describe(delivery: DeliveryReport) -> str:
    header = delivery.header
    kind = "dry run" if header.dry_run else "sync"
    return f"{kind} {header.job_id} started {iso_utc(header.started_at)}, {header.status.value}; " + (
        delivery.totals.summary()
    )
