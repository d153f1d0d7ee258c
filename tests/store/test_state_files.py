"""Per-file state, deliveries, failures with growing delays and dead letters, problems, checkpoints."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from state_factories import START, delivered_file

from celeste_desktop.domain.models import FileProblem, FileProblemKind
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import FileState, StateDB, retry_delay


def test_file_states_round_trip(state: StateDB) -> None:
    assert state.file_state("d1", "a") is None
    state.set_file_state("d1", "a", FileState.DOWNLOADING)
    state.set_file_state("d1", "b", FileState.UPLOADING)
    state.set_file_state("d2", "c", FileState.PENDING)
    assert state.file_state("d1", "a") is FileState.DOWNLOADING
    assert state.file_states("d1") == {"a": FileState.DOWNLOADING, "b": FileState.UPLOADING}
    assert state.files_in_state(FileState.DOWNLOADING, FileState.UPLOADING) == [("d1", "a"), ("d1", "b")]
    assert state.delivered("d1") == {}  # not in storage yet

    state.set_file_states("d1", (f"new-{n}" for n in range(2500)), FileState.PENDING)
    state.set_file_states("d1", ["a", "new-1"], FileState.SKIPPED)
    states = state.file_states("d1")
    assert len(states) == 2502
    assert (states["a"], states["new-1"], states["new-2"]) == (FileState.SKIPPED, FileState.SKIPPED, FileState.PENDING)


def test_mark_delivered_records_the_delivery_and_clears_what_it_settles(state: StateDB, clock: FakeClock) -> None:
    state.start_transfer("d1", "a", spool_path="/spool/a", source_size=1234)
    state.record_failure("d1", "a", "timed out", now=START, path="Docs/a.pdf")
    note = FileProblem("d1", "b", "Docs/b.pdf", FileProblemKind.NOTE, "altered", "SharePoint changed it")
    state.set_problem(note)

    state.mark_delivered(delivered_file("a"))
    state.mark_delivered(delivered_file("b", registered=False))

    assert state.delivered("d1") == {
        "a": delivered_file("a", delivered_at=START),
        "b": delivered_file("b", registered=False, delivered_at=START),
    }
    assert state.delivered_file("d1", "a") == delivered_file("a", delivered_at=START)
    assert state.file_state("d1", "a") is FileState.DONE
    assert state.checkpoint("d1", "a") is None
    assert state.due_retries(START + timedelta(days=1)) == []
    assert [problem.kind for problem in state.problems()] == [FileProblemKind.NOTE]  # notes stay


def test_relocate_register_delete(state: StateDB) -> None:
    state.mark_delivered(delivered_file("a", registered=False))
    state.mark_registered("d1", "a")
    assert state.delivered("d1")["a"].registered

    state.mark_relocated(
        "d1", "a", storage_key="yacht-1/New/a.pdf", folder_path=("New",), name="a.pdf", registered=False
    )
    moved = state.delivered("d1")["a"]
    assert (moved.storage_key, moved.folder_path, moved.registered) == ("yacht-1/New/a.pdf", ("New",), False)
    assert moved.sha256 == "ab" * 32  # the bytes did not change

    state.mark_deleted("d1", "a")
    assert state.delivered("d1")["a"].deleted

    with pytest.raises(LookupError):
        state.mark_registered("d1", "never-delivered")
    state.forget_file("d1", "a")
    assert state.delivered("d1") == {}


def test_retry_delay_doubles_from_a_minute_and_caps_at_an_hour() -> None:
    minutes = [retry_delay(attempt) / timedelta(minutes=1) for attempt in range(1, 11)]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert retry_delay(10_000) == timedelta(hours=1)
    assert retry_delay(0) == timedelta(0)


def test_failures_back_off_then_park_as_dead_letter(state: StateDB) -> None:
    now = START
    for attempt in range(1, 5):
        problem = state.record_failure(
            "d1", "a", f"503 number {attempt}", now=now, path="Docs/a.pdf", code="serviceUnavailable", max_attempts=5
        )
        assert problem.kind is FileProblemKind.FAILED
        assert problem.attempts == attempt
        due_at = now + retry_delay(attempt)
        assert state.next_retry_at() == due_at
        assert state.due_retries(due_at - timedelta(seconds=1)) == []
        (due,) = state.due_retries(due_at)
        expected = ("a", "Docs/a.pdf", f"503 number {attempt}", attempt)
        assert (due.item_id, due.path, due.message, due.attempts) == expected
        now = due_at

    parked = state.record_failure("d1", "a", "still 503", now=now, path="Docs/a.pdf", max_attempts=5)
    assert parked.kind is FileProblemKind.DEAD_LETTER
    assert parked.attempts == 5
    assert state.file_state("d1", "a") is FileState.DEAD
    assert state.due_retries(now + timedelta(days=365)) == []
    assert state.next_retry_at() is None
    assert state.problems([FileProblemKind.DEAD_LETTER]) == [parked]

    assert state.reset_dead_letter("d1", "a") == 1
    assert state.file_state("d1", "a") is FileState.PENDING
    assert state.problems() == []
    # A fresh start: the next failure waits one minute again.
    assert state.record_failure("d1", "a", "again", now=now, max_attempts=5).attempts == 1
    assert state.next_retry_at() == now + timedelta(minutes=1)


def test_reset_dead_letters_of_everyone(state: StateDB) -> None:
    for item_id in ("a", "b"):
        state.record_failure("d1", item_id, "bad", now=START, max_attempts=1)
    state.record_failure("d2", "c", "bad", now=START, max_attempts=1)
    state.record_failure("d1", "waiting", "bad", now=START, max_attempts=3)
    assert state.reset_dead_letter("d1") == 2
    assert state.reset_dead_letter() == 1
    assert state.reset_dead_letter() == 0
    assert [problem.item_id for problem in state.problems()] == ["waiting"]


def test_due_retries_come_earliest_first(state: StateDB) -> None:
    state.record_failure("d1", "late", "x", now=START + timedelta(minutes=10))
    state.record_failure("d1", "early", "x", now=START)
    assert [problem.item_id for problem in state.due_retries(START + timedelta(hours=1))] == ["early", "late"]


def test_problems_are_listed_worst_first_and_clear(state: StateDB, clock: FakeClock) -> None:
    skipped = FileProblem("d1", "s", "Docs/~$lock.docx", FileProblemKind.SKIPPED, "temporary", "Office lock file")
    state.set_problem(skipped)
    state.record_failure("d1", "f", "boom", now=START, path="Docs/f.pdf")
    state.record_failure("d1", "x", "boom", now=START, path="Docs/x.pdf", max_attempts=1)
    kinds = [problem.kind for problem in state.problems()]
    assert kinds == [FileProblemKind.DEAD_LETTER, FileProblemKind.FAILED, FileProblemKind.SKIPPED]
    assert state.problems([FileProblemKind.SKIPPED]) == [replace(skipped, updated_at=clock.now())]
    assert state.clear_problem("d1", "s")
    assert not state.clear_problem("d1", "s")


def test_transfer_checkpoints_resume_where_they_stopped(state: StateDB, clock: FakeClock) -> None:
    assert state.checkpoint("d1", "a") is None
    fresh = state.start_transfer(
        "d1", "a", spool_path="/spool/a.part", source_size=10_000, source_ctag="ctag-1", source_quickxor="qx"
    )
    assert state.checkpoint("d1", "a") == fresh
    clock.advance(5)
    state.save_download_progress("d1", "a", 4096)
    state.save_download_progress("d1", "a", 10_000, complete=True)
    state.save_tus_progress("d1", "a", tus_url="https://storage/upload/resumable/xyz", offset=0, upload_key="k/a.pdf")
    state.save_tus_progress("d1", "a", tus_url="https://storage/upload/resumable/xyz", offset=6 * 1024 * 1024)

    resumed = state.checkpoint("d1", "a")
    assert resumed is not None
    assert (resumed.download_offset, resumed.download_complete) == (10_000, True)
    assert (resumed.tus_url, resumed.tus_offset, resumed.upload_key) == (
        "https://storage/upload/resumable/xyz",
        6 * 1024 * 1024,
        "k/a.pdf",
    )
    assert (resumed.source_ctag, resumed.source_quickxor, resumed.source_size) == ("ctag-1", "qx", 10_000)
    assert resumed.created_at == START
    assert resumed.updated_at == START + timedelta(seconds=5)
    assert state.checkpoints() == [resumed]

    # The source changed: a new checkpoint starts from zero.
    restarted = state.start_transfer("d1", "a", spool_path="/spool/a2.part", source_size=5, source_ctag="ctag-2")
    assert state.checkpoint("d1", "a") == restarted
    assert restarted.download_offset == 0 and restarted.tus_url is None

    assert state.clear_checkpoint("d1", "a")
    assert not state.clear_checkpoint("d1", "a")
    with pytest.raises(LookupError, match="start_transfer"):
        state.save_download_progress("d1", "a", 1)
    with pytest.raises(ValueError, match="negative"):
        state.save_download_progress("d1", "a", -1)


def test_naive_timestamps_are_refused(state: StateDB) -> None:
    with pytest.raises(Exception, match="time zone"):
        state.record_failure("d1", "a", "x", now=START.replace(tzinfo=None))
