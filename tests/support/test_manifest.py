"""The delivery report model and its CSV: rows match what storage holds, exactly."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from celeste_desktop.cli.main import run
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings
from celeste_desktop.domain.models import Drive, DriveKind, Job, JobStatus
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.store.db import open_state
from celeste_desktop.store.records import ManifestOutcome, ManifestRow, StoredAccount
from celeste_desktop.support.manifest import (
    CSV_COLUMNS,
    JobNotFound,
    build_report,
    iso_utc,
    save_csv,
    select_job,
    write_atomically,
)

BUCKET = "documents"
YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"
T0 = datetime(2026, 1, 31, 8, 15, tzinfo=UTC)


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# -- acceptance: a real sync against the simulators ----------------------------------------------


def test_manifest_rows_match_the_simulators_stored_objects_and_rows_exactly(
    sim_home: Path, sim: SimStack, tmp_path: Path
) -> None:
    for argv in (("login", "--device-code"), ("select", "01_BRIDGE", "04_MANUALS"), ("sync",)):
        code, out, err = cli(sim_home, *argv)
        assert code == 0, out + err
    paths = AppPaths.resolve(sim_home)
    with open_state(paths.state_db) as state:
        report = build_report(state, load_settings(paths.settings_file).yacht_id)

    objects = {obj.name: obj for obj in sim.supabase.list_objects(BUCKET)}
    registrations = {row["storage_path"]: row for row in sim.supabase.rows("doc_metadata")}
    delivered = report.delivered
    assert delivered, "the sync delivered files"
    # Every delivered row is one stored object and one registration, and nothing is left over.
    assert {row.storage_key for row in delivered} == set(objects) == set(registrations)
    assert len({row.storage_key for row in delivered}) == len(delivered)
    for row in delivered:
        stored = objects[row.storage_key or ""]
        registration = registrations[row.storage_key or ""]
        assert row.size == stored.size == registration["size_bytes"], row.path
        assert row.sha256 == registration["sha256"], row.path
        assert row.registration_id == registration["source_id"], row.path
        assert row.path == registration["original_path"]
        assert row.quickxor == registration["metadata"]["onedrive"]["quick_xor_hash"], row.path
        assert row.quickxor, "a delivered file carries OneDrive's QuickXorHash"
        assert row.at.tzinfo is not None
    # The skips are listed, each with the reason the officer sees.
    reasons = {row.path: row.reason for row in report.skipped}
    assert any(path.endswith(".one") and "OneNote" in reason for path, reason in reasons.items())
    assert any(path.endswith("ECDIS Chart Updater.zip") and "malware" in reason for path, reason in reasons.items())
    assert report.failed == ()
    header = report.header
    assert header.yacht_id == sim.yacht_id
    assert header.account == "it.officer@mysimyacht.onmicrosoft.com"
    assert header.status is JobStatus.COMPLETED
    assert header.finished_at is not None and header.finished_at >= header.started_at
    assert report.totals.delivered == len(delivered)
    assert report.totals.skipped == len(report.skipped)
    assert report.totals.bytes_delivered == sum(obj.size for obj in objects.values())

    # The CSV carries the same rows, byte for byte in every evidence column.
    target = tmp_path / "report.csv"
    save_csv(report, target)
    with target.open(encoding="utf-8-sig", newline="") as stream:
        records = list(csv.DictReader(stream))
    files = {record["storage_key"]: record for record in records if record["record"] == "file"}
    for row in delivered:
        record = files[row.storage_key or ""]
        assert int(record["size_bytes"]) == objects[row.storage_key or ""].size
        assert record["sha256"] == registrations[row.storage_key or ""]["sha256"]
        assert record["registration_id"] == registrations[row.storage_key or ""]["source_id"]
        assert record["quickxor_hash"] == row.quickxor
    assert records[-1]["record"] == "total"
    assert records[-1]["size_bytes"] == str(report.totals.bytes_delivered)


# -- the model, from a fake state ----------------------------------------------------------------


class FakeState:
    """The few state reads the report makes, from plain lists."""

    def __init__(self, jobs: list[Job], manifests: dict[str, list[ManifestRow]] | None = None) -> None:
        self._jobs = sorted(jobs, key=lambda job: job.started_at, reverse=True)
        self._manifests = manifests or {}
        self.drive_list = [Drive("drive-1", "OneDrive", DriveKind.ONEDRIVE)]
        self.stored_account: StoredAccount | None = StoredAccount("officer@yacht.example", "tenant")

    def jobs(self, limit: int = 50) -> list[Job]:
        return self._jobs[:limit]

    def job(self, job_id: str) -> Job | None:
        return next((job for job in self._jobs if job.job_id == job_id), None)

    def manifest(self, job_id: str) -> list[ManifestRow]:
        return self._manifests.get(job_id, [])

    def account(self) -> StoredAccount | None:
        return self.stored_account

    def drives(self) -> list[Drive]:
        return self.drive_list


def job(job_id: str, minutes: int, *, dry_run: bool = False, status: JobStatus = JobStatus.COMPLETED) -> Job:
    started = T0 + timedelta(minutes=minutes)
    return Job(job_id, status, started, started + timedelta(seconds=90), dry_run=dry_run)


def line(path: str, outcome: ManifestOutcome, *, size: int = 100, drive: str = "drive-1", **values: str) -> ManifestRow:
    delivered = outcome in (ManifestOutcome.DELIVERED, ManifestOutcome.RELOCATED)
    defaults = {
        "sha256": "ab" * 32 if delivered else None,
        "quickxor": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" if delivered else None,
        "storage_key": f"{YACHT}/{path}" if delivered else None,
        "registration_id": "505fdb73-bf3e-532c-94e8-24dd01e7f197" if delivered else None,
        "reason": "new" if delivered else "by rule",
    }
    defaults.update(values)
    return ManifestRow(drive, f"item-{path}", path, outcome, T0, size=size, **defaults)  # type: ignore[arg-type]


def test_without_an_id_the_latest_real_sync_is_reported_and_dry_runs_passed_over() -> None:
    state = FakeState([job("old", 0), job("real", 10), job("preview", 20, dry_run=True)])
    assert select_job(state, None).job_id == "real"
    assert select_job(state, "preview").job_id == "preview", "a dry run is reported when named"


def test_a_job_can_be_named_by_an_unambiguous_start_of_its_id() -> None:
    state = FakeState([job("e84ab6d7-aaaa", 0), job("e84ab6d7-bbbb", 5), job("717f3852-cccc", 10)])
    assert select_job(state, "717f").job_id == "717f3852-cccc"
    with pytest.raises(JobNotFound, match="give more of the id") as ambiguous:
        select_job(state, "e84a")
    assert ambiguous.value.title == "Sync id is ambiguous"
    with pytest.raises(JobNotFound, match="leave out --job"):
        select_job(state, "ffff")


@pytest.mark.parametrize("jobs", [[], [job("preview", 0, dry_run=True)]])
def test_no_real_sync_yet_says_what_to_do(jobs: list[Job]) -> None:
    with pytest.raises(JobNotFound, match="run a sync first"):
        select_job(FakeState(jobs), None)


def test_totals_count_each_outcome_and_bytes_only_of_delivered_files() -> None:
    rows = [
        line("a.pdf", ManifestOutcome.DELIVERED, size=1000),
        line("b.pdf", ManifestOutcome.DELIVERED, size=500),
        line("moved.pdf", ManifestOutcome.RELOCATED, size=7000, reason="renamed"),
        line("gone.pdf", ManifestOutcome.DELETED, size=3),
        line("Notebook", ManifestOutcome.SKIPPED, size=0, reason="OneNote notebooks have no downloadable file"),
        line("broken.pdf", ManifestOutcome.FAILED, size=42, reason="Service unreachable"),
    ]
    report = build_report(FakeState([job("j", 0)], {"j": rows}), YACHT, now=T0)
    totals = report.totals
    assert (totals.delivered, totals.relocated, totals.removed, totals.skipped, totals.failed) == (2, 1, 1, 1, 1)
    assert totals.files == 6
    assert totals.bytes_delivered == 1500, "a relocation moves no bytes over the link"
    assert totals.summary() == "2 delivered, 1 relocated, 1 removed, 1 skipped, 1 failed"
    assert [row.path for row in report.delivered] == ["a.pdf", "b.pdf", "moved.pdf"]
    assert [row.reason for row in report.failed] == ["Service unreachable"]
    assert report.header.account == "officer@yacht.example"
    assert report.header.generated_at == T0


def test_rows_are_sorted_by_drive_then_path_and_name_their_drive() -> None:
    rows = [
        line("Zeta/z.pdf", ManifestOutcome.DELIVERED),
        line("alpha/a.pdf", ManifestOutcome.DELIVERED),
        line("Engine/e.pdf", ManifestOutcome.DELIVERED, drive="drive-2"),
        line("x.pdf", ManifestOutcome.DELIVERED, drive="drive-unknown"),
    ]
    state = FakeState([job("j", 0)], {"j": rows})
    state.drive_list.append(Drive("drive-2", "Engineering Library", DriveKind.SHAREPOINT))
    state.stored_account = None
    report = build_report(state, YACHT)
    assert [(row.drive_name, row.path) for row in report.rows] == [
        ("drive-unknown", "x.pdf"),  # a drive no longer known is named by its id
        ("Engineering Library", "Engine/e.pdf"),
        ("OneDrive", "alpha/a.pdf"),
        ("OneDrive", "Zeta/z.pdf"),
    ]
    assert report.header.drives == ("drive-unknown", "Engineering Library", "OneDrive")
    assert report.header.account == ""
    assert report.rows[-1].onedrive_path == "/Zeta/z.pdf"


# -- the CSV -------------------------------------------------------------------------------------


def sample_csv(tmp_path: Path) -> tuple[bytes, list[dict[str, str]]]:
    rows = [
        line('Ölfilter, "neu"/Wartung.pdf', ManifestOutcome.DELIVERED, size=1234),
        line("Bridge Notebook", ManifestOutcome.SKIPPED, size=0, reason="OneNote notebooks have no downloadable file"),
    ]
    report = build_report(FakeState([job("job-1", 0)], {"job-1": rows}), YACHT, now=T0 + timedelta(hours=1))
    target = tmp_path / "report.csv"
    save_csv(report, target)
    with target.open(encoding="utf-8-sig", newline="") as stream:
        records = list(csv.DictReader(stream))
    return target.read_bytes(), records


def test_csv_is_utf8_with_bom_one_header_row_and_crlf_lines(tmp_path: Path) -> None:
    raw, _ = sample_csv(tmp_path)
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel on Windows needs the BOM to read UTF-8"
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert text.count("\r\n") == 4, "header, two files, totals: RFC 4180 line ends"
    assert "Ölfilter" in text


def test_csv_rows_are_exact_and_timestamps_iso_utc(tmp_path: Path) -> None:
    _, records = sample_csv(tmp_path)
    assert [record["record"] for record in records] == ["file", "file", "total"]
    skipped, delivered, total = records[0], records[1], records[2]
    assert delivered["path"] == 'Ölfilter, "neu"/Wartung.pdf', "commas and quotes survive the round trip"
    assert delivered["storage_key"] == f'{YACHT}/Ölfilter, "neu"/Wartung.pdf'
    assert delivered["size_bytes"] == "1234"
    assert delivered["sha256"] == "ab" * 32
    assert delivered["at"] == "2026-01-31T08:15:00Z"
    assert delivered["job_started_at"] == "2026-01-31T08:15:00Z"
    assert delivered["job_finished_at"] == "2026-01-31T08:16:30Z"
    assert datetime.fromisoformat(delivered["at"]) == T0
    assert (delivered["yacht_id"], delivered["account"], delivered["job_id"]) == (
        YACHT,
        "officer@yacht.example",
        "job-1",
    )
    assert (delivered["job_status"], delivered["dry_run"]) == ("completed", "false")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == "OneNote notebooks have no downloadable file"
    assert skipped["sha256"] == skipped["storage_key"] == ""
    assert total["size_bytes"] == "1234"
    assert total["reason"] == "1 delivered, 0 relocated, 0 removed, 1 skipped, 0 failed"
    assert total["at"] == "2026-01-31T09:15:00Z", "the totals row carries when the report was made"


def test_iso_utc_converts_zones_and_treats_naive_times_as_utc() -> None:
    assert iso_utc(None) == ""
    assert iso_utc(datetime(2026, 1, 31, 8, 15, 0, 999)) == "2026-01-31T08:15:00Z"
    on_the_bridge = datetime(2026, 1, 31, 12, 15, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(on_the_bridge) == "2026-01-31T10:15:00Z"


def test_a_report_cut_short_leaves_the_previous_file_and_no_fragment(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("previous report")
    with pytest.raises(RuntimeError), write_atomically(target) as temporary:
        temporary.write_text("half a rep")
        raise RuntimeError("disk full")
    assert target.read_text() == "previous report"
    assert list(tmp_path.iterdir()) == [target]
    with write_atomically(target) as temporary:
        temporary.write_text("new report")
    assert target.read_text() == "new report"
    assert list(tmp_path.iterdir()) == [target]
